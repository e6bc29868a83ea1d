"""The image U-Net and its video inflation (Section 4 "Model architecture", Appendix A.1, A.4).

One network class, :class:`VideoUNet`, covers both families of the paper's cascade:

- ``architecture="adm"``: the ADM/EDM U-Net of the base, UCF-101 and temporal-interpolation models
  (Tables G-K): residual blocks with scale-shift norm, self-attention and text cross-attention at
  the listed resolutions, a skip connection per block.
- ``architecture="efficient"``: Imagen's efficient U-Net of the super-resolution models (Tables L-M):
  down-sampling at the *start* of each level, more residual blocks at low resolution
  (``block_mult``), one skip connection per level, and a 3x1x1 temporal convolution at the end of
  each block (A.1 (4)).

How a video is handled (A.1 (1), (2), (5)): the network keeps every feature map as
``(batch * frames, C, H, W)`` -- frames moved into the batch axis -- so each 3x3 convolution is
exactly the 1x3x3 convolution of A.1 (1) and GroupNorm and spatial attention see per-frame
(image) statistics, as A.1 (5) asks. Temporal layers alone reshape to put the spatial positions in
the batch axis and mix information across frames. They start as the identity (zero-initialised
output projections), so a freshly inflated video model equals the image model applied per frame.

Joint image-video batches (A.1 (7)): with ``num_video_frames=n`` only the first n frames of each
sample are a video; the remaining "frames" are independent images that temporal layers skip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn
from torch.utils.checkpoint import checkpoint

from pyoco_lab.models.blocks import (
    Context,
    Downsample,
    EfficientResBlock,
    ResBlock,
    SpatialCrossAttention,
    SpatialSelfAttention,
    SpatialTransformer,
    TemporalAttention,
    TemporalConv,
    Upsample,
    group_norm,
    sinusoidal_embedding,
    zero_init,
)
from pyoco_lab.models.config import UNetConfig

# ----------------------------------------------------------------------------------------------
# The network.


TEMPORAL_LAYERS = (TemporalAttention, TemporalConv)


class Stage(nn.Module):
    """Layers applied in order; one unit of gradient checkpointing.

    Temporal layers are stored apart (``temporal.<i>`` runs after spatial layer i) so that the
    spatial layers keep the same parameter names in the image and the video model: an image
    checkpoint then loads into the video model key for key.
    """

    def __init__(self, layers):
        super().__init__()
        spatial, temporal = [], {}
        for layer in layers:
            if isinstance(layer, TEMPORAL_LAYERS):
                temporal[str(len(spatial) - 1)] = layer
            else:
                spatial.append(layer)
        self.layers = nn.ModuleList(spatial)
        self.temporal = nn.ModuleDict(temporal)

    def forward(self, x, c: Context):
        for i, layer in enumerate(self.layers):
            x = layer(x, c)
            if str(i) in self.temporal:
                x = self.temporal[str(i)](x, c)
        return x


class VideoUNet(nn.Module):
    """The U-Net of one cascade stage; an image model on (B,C,H,W), a video model on (B,F,C,H,W).

    ``net(x, noise_labels, *, class_labels=None, text_embeddings=None, text_mask=None,
    num_video_frames=None, cond=None)``:

    - ``noise_labels`` (B,): EDM's c_noise = ln(sigma)/4.
    - ``class_labels`` (B,) int, or (B, F) with one label per frame: -1 (or None for the whole
      batch) selects the learned null class used for classifier-free guidance and label dropout.
    - ``text_embeddings``: one (B, L, D) tensor or a list with one per entry of ``config.text_dims``
      (T5 and CLIP in the paper); ``text_mask`` likewise (bool, True = a real token). A learned
      "null" token is always appended, so a sample whose tokens are all masked (dropped text)
      still has something to attend to. Per-frame text is (B, F, L, D) with masks (B, F, L): each
      frame cross-attends to its own tokens (a (B, L, D) entry next to it is shared by all frames).
    - Per-frame labels and text are how a joint batch gives every appended image its own
      conditioning (A.1 (7)); (B,) labels and (B, L, D) text take exactly the per-sample path.
    - ``num_video_frames``: in a joint batch, how many leading frames are video (A.1 (7)).
    - ``cond``: extra channels concatenated to x (``config.cond_channels``), shaped like x.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        mc = cfg.model_channels
        emb_ch = 4 * mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch))
        # Class embedding with one extra row: the null class for label dropout and guidance.
        self.class_embed = nn.Embedding(cfg.num_classes + 1, emb_ch) if cfg.num_classes else None
        self.text_proj = nn.ModuleList(nn.Linear(d, cfg.context_channels) for d in cfg.text_dims)
        self.null_token = nn.Parameter(torch.zeros(1, 1, cfg.context_channels)) if cfg.text_dims else None
        self.input_conv = nn.Conv2d(cfg.in_channels + cfg.cond_channels, mc, 3, padding=1)
        build = self._build_adm if cfg.architecture == "adm" else self._build_efficient
        self.down, self.mid, self.up, out_ch = build()
        self.out_norm = group_norm(out_ch)
        self.out_conv = zero_init(nn.Conv2d(out_ch, cfg.out_channels, 3, padding=1))

    # -- construction ------------------------------------------------------------------------

    def _attention(self, ch: int, res: int) -> list[nn.Module]:
        """Spatial self-attention, cross-attention, then temporal attention (A.1 (2)) at `res`."""
        cfg, layers = self.config, []
        self_attn, cross_attn = res in cfg.attention_resolutions, res in cfg.cross_attention_resolutions
        if self_attn and cross_attn:
            layers.append(SpatialTransformer(ch, cfg.context_channels, cfg.head_channels))
        elif self_attn:
            layers.append(SpatialSelfAttention(ch, cfg.head_channels))
        elif cross_attn:
            layers.append(SpatialCrossAttention(ch, cfg.context_channels, cfg.head_channels))
        if cfg.video and res in cfg.temporal_attention_resolutions:
            layers.append(TemporalAttention(ch, cfg.head_channels))
        return layers

    def _res(self, cin, cout, **kw):
        cfg = self.config
        block = ResBlock if cfg.architecture == "adm" else EfficientResBlock
        return block(
            cin, cout, 4 * cfg.model_channels, dropout=cfg.dropout, scale_shift=cfg.use_scale_shift_norm, **kw
        )

    def _build_adm(self):
        """ADM layout: a skip per block; resolution halves after every level but the last."""
        cfg, mc = self.config, self.config.model_channels
        down, skips, ch = nn.ModuleList(), [mc], mc
        res = cfg.resolution
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.blocks_at(level)):
                down.append(Stage([self._res(ch, mult * mc), *self._attention(mult * mc, res)]))
                ch = mult * mc
                skips.append(ch)
            if level < len(cfg.channel_mult) - 1:
                updown = self._res(ch, ch, updown="down") if cfg.resblock_updown else Downsample(ch, ch)
                down.append(Stage([updown]))
                skips.append(ch)
                res //= 2
        # The middle always attends (ADM), at whatever the lowest resolution is.
        if cfg.cross_attention_resolutions:
            mid_attn = [SpatialTransformer(ch, cfg.context_channels, cfg.head_channels)]
        else:
            mid_attn = [SpatialSelfAttention(ch, cfg.head_channels)]
        if cfg.video and cfg.temporal_attention_resolutions:
            mid_attn.append(TemporalAttention(ch, cfg.head_channels))
        mid = Stage([self._res(ch, ch), *mid_attn, self._res(ch, ch)])
        up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.blocks_at(level) + 1):
                layers = [self._res(ch + skips.pop(), mult * mc), *self._attention(mult * mc, res)]
                ch = mult * mc
                if level > 0 and i == cfg.blocks_at(level):
                    layers.append(self._res(ch, ch, updown="up") if cfg.resblock_updown else Upsample(ch, ch))
                    res *= 2
                up.append(Stage(layers))
        return down, mid, up, ch

    def _build_efficient(self):
        """Imagen's efficient U-Net: downsample first, blocks, attention; one skip per level."""
        cfg, mc = self.config, self.config.model_channels
        down, up, ch, res = nn.ModuleList(), nn.ModuleList(), mc, cfg.resolution
        skips = []
        for level, mult in enumerate(cfg.channel_mult):
            layers = []
            if level > 0:
                layers.append(Downsample(ch, ch))
                res //= 2
            for _ in range(cfg.blocks_at(level)):
                layers.append(self._res(ch, mult * mc))
                ch = mult * mc
            layers += self._attention(ch, res)
            if cfg.video and cfg.temporal_conv:
                layers.append(TemporalConv(ch))
            down.append(Stage(layers))
            skips.append(ch)
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            layers = [self._res(ch + skips.pop(), mult * mc)]
            ch = mult * mc
            layers += [self._res(ch, ch) for _ in range(cfg.blocks_at(level) - 1)]
            layers += self._attention(ch, res)
            if cfg.video and cfg.temporal_conv:
                layers.append(TemporalConv(ch))
            if level > 0:
                layers.append(Upsample(ch, cfg.channel_mult[level - 1] * mc))
                ch = cfg.channel_mult[level - 1] * mc
                res *= 2
            up.append(Stage(layers))
        return down, None, up, ch

    # -- inflation ---------------------------------------------------------------------------

    def load_image_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load an image model's weights (A.1 (6)); temporal layers keep their identity initialisation.

        Raises ValueError naming the keys that do not fit, so a wrong --init is caught before training.
        """
        own = self.state_dict()
        unexpected = [k for k in state_dict if k not in own]
        missing = [k for k in own if k not in state_dict and not is_temporal_key(k)]
        wrong = [k for k in state_dict if k in own and own[k].shape != state_dict[k].shape]
        if unexpected or missing or wrong:
            raise ValueError(
                "image checkpoint does not fit this video U-Net: "
                f"unexpected {unexpected[:5]}, missing {missing[:5]}, wrong shape {wrong[:5]}; "
                "build the video model from the image model's config (same channels, levels, resolution)"
            )
        self.load_state_dict(state_dict, strict=False)

    # -- forward -----------------------------------------------------------------------------

    def _text_context(self, text_embeddings, text_mask, batch: int, frames: int, device):
        """(tokens, mask, per_frame): projected tokens of every sample (B, L', C), or of every frame."""
        cfg = self.config
        if not cfg.text_dims:
            if text_embeddings is not None:
                raise ValueError(
                    "this model has no text conditioning (config.text_dims is empty); drop text_embeddings"
                )
            return None, None, False
        if text_embeddings is None:  # no text at all: only the null token (unconditional branch)
            return self.null_token.expand(batch, 1, -1), None, False
        embs = [text_embeddings] if torch.is_tensor(text_embeddings) else list(text_embeddings)
        masks = [text_mask] if torch.is_tensor(text_mask) or text_mask is None else list(text_mask)
        if len(masks) == 1 and len(embs) > 1:
            masks = masks * len(embs)
        if len(embs) != len(cfg.text_dims) or any(
            e.shape[-1] != d for e, d in zip(embs, cfg.text_dims, strict=False)
        ):
            raise ValueError(
                f"expected {len(cfg.text_dims)} text embedding(s) with widths {cfg.text_dims}, got "
                f"{[tuple(e.shape) for e in embs]}; pass one (B, L, D) tensor per text encoder"
            )
        per_frame = any(e.ndim == 4 for e in embs)
        if per_frame:
            embs, masks = _per_frame_text(embs, masks, batch, frames)
            batch = batch * frames
        tokens = [proj(e.float()) for proj, e in zip(self.text_proj, embs, strict=True)]
        tokens.append(self.null_token.expand(batch, 1, -1))
        if all(m is None for m in masks):
            return torch.cat(tokens, dim=1), None, per_frame
        full = [
            torch.ones(e.shape[:2], dtype=torch.bool, device=device) if m is None else m.bool()
            for e, m in zip(embs, masks, strict=True)
        ]
        full.append(torch.ones(batch, 1, dtype=torch.bool, device=device))
        return torch.cat(tokens, dim=1), torch.cat(full, dim=1), per_frame

    def forward(
        self,
        x,
        noise_labels,
        *,
        class_labels=None,
        text_embeddings=None,
        text_mask=None,
        num_video_frames=None,
        cond=None,
    ):
        cfg = self.config
        is_video = x.ndim == 5
        if x.ndim not in (4, 5):
            raise ValueError(f"x must be (B,C,H,W) or (B,F,C,H,W), got shape {tuple(x.shape)}")
        batch = x.shape[0]
        frames = x.shape[1] if is_video else 1
        if cfg.cond_channels:
            if cond is None or cond.shape[:-3] != x.shape[:-3] or cond.shape[-3] != cfg.cond_channels:
                raise ValueError(
                    f"this model needs cond with {cfg.cond_channels} channels shaped like x {tuple(x.shape)} "
                    f"(got {None if cond is None else tuple(cond.shape)}); "
                    "pass the conditioning video as cond="
                )
            x = torch.cat([x, cond.to(x.dtype)], dim=-3)
        elif cond is not None:
            raise ValueError("this model takes no cond channels (config.cond_channels = 0); drop cond")
        video_frames = frames if num_video_frames is None else int(num_video_frames)
        if not 0 <= video_frames <= frames:
            raise ValueError(f"num_video_frames={num_video_frames} must lie in [0, {frames}]")
        if not is_video or not cfg.video:
            video_frames = 0

        emb = self.time_embed(sinusoidal_embedding(noise_labels.reshape(batch), cfg.model_channels))
        labels = None
        if self.class_embed is not None:
            labels = torch.full((batch,), -1, device=x.device) if class_labels is None else class_labels
            labels = torch.where(labels < 0, cfg.num_classes, labels).long()
        if labels is not None and labels.ndim == 2:  # one label per frame (B, F)
            if tuple(labels.shape) != (batch, frames):
                raise ValueError(
                    f"per-frame class_labels must be (B, F) = ({batch}, {frames}), got {tuple(labels.shape)}"
                )
            frame_emb = repeat(emb, "b e -> (b f) e", f=frames) + self.class_embed(labels.reshape(-1))
        else:  # one label per sample, shared by its frames
            if labels is not None:
                emb = emb + self.class_embed(labels)
            frame_emb = repeat(emb, "b e -> (b f) e", f=frames)
        text, mask, text_per_frame = self._text_context(text_embeddings, text_mask, batch, frames, x.device)
        c = Context(frame_emb, text, mask, batch, frames, video_frames, text_per_frame)

        h = rearrange(x, "b f ch h w -> (b f) ch h w") if is_video else x
        h = self.input_conv(h)
        run = self._run
        if cfg.architecture == "adm":
            skips = [h]
            for stage in self.down:
                h = run(stage, h, c)
                skips.append(h)
            h = run(self.mid, h, c)
            for stage in self.up:
                h = run(stage, torch.cat([h, skips.pop()], dim=1), c)
        else:
            skips = []
            for stage in self.down:
                h = run(stage, h, c)
                skips.append(h)
            for stage in self.up:
                h = run(stage, torch.cat([h, skips.pop()], dim=1), c)
        h = self.out_conv(F.silu(self.out_norm(h)))
        return rearrange(h, "(b f) ch h w -> b f ch h w", b=batch) if is_video else h

    def _run(self, stage, h, c):
        if self.config.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(stage, h, c, use_reentrant=False)
        return stage(h, c)


def _per_frame_text(embs, masks, batch: int, frames: int):
    """Per-frame text (B, F, L, D) / masks (B, F, L) flattened to (B*F, L, ...); a per-sample entry
    (B, L, D) / (B, L) next to them is shared by every frame of its sample."""
    flat_embs, flat_masks = [], []
    for e, m in zip(embs, masks, strict=True):
        if e.ndim == 3:
            e = e[:, None].expand(-1, frames, -1, -1)
        elif tuple(e.shape[:2]) != (batch, frames):
            raise ValueError(
                f"per-frame text embeddings must be (B, F, L, D) = ({batch}, {frames}, L, D), "
                f"got {tuple(e.shape)}"
            )
        if m is not None and m.ndim == 2:
            m = m[:, None].expand(-1, frames, -1)
        flat_embs.append(e.reshape(batch * frames, *e.shape[2:]))
        flat_masks.append(None if m is None else m.reshape(batch * frames, m.shape[-1]))
    return flat_embs, flat_masks


def is_temporal_key(key: str) -> bool:
    """Parameters that exist only in the video model (they must stay new on inflation)."""
    return ".temporal." in key
