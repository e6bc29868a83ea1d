"""The paper's metrics (FVD, IS, frame FID) with the literature's networks, from local weight files.

Nothing is downloaded: put the files in ``weights_dir()`` (``$PYOCO_WEIGHTS``, else ``<data root>/weights``).
All three are TorchScript files loaded with ``torch.jit.load`` (no pickle code runs), in the formats the
video-generation literature shares (StyleGAN-V / StyleGAN2-ADA metric code):

* FVD — ``i3d_torchscript.pt``: I3D trained on Kinetics-400 (the tf.hub FVD weights). Input uint8
  (B, 3, T, H, W); ``rescale=True, resize=True`` make the script map [0, 255] → [−1, 1] and resize to
  224×224 itself; ``return_features=True`` returns the 400-d pre-softmax features.
  Protocol: 16-frame clips, 2,048 real vs 2,048 generated (``fvd2048_16f``).
* IS — ``c3d_ucf101.pt``: C3D fine-tuned on UCF-101 (TorchScript port of TGANv2's Chainer model).
  Input uint8 (B, 3, 16, H, W); the script resizes to 112×112 and subtracts the C3D mean itself and
  returns softmax probabilities over the 101 classes. Protocol: 16 frames, 2,048 samples, 10 splits.
* FID-frame — ``inception-2015-12-05.pt``: Inception-v3 (TF 2015 graph, TorchScript from StyleGAN2-ADA).
  Input uint8 (N, 3, H, W), resized to 299×299 inside; ``return_features=True`` → 2048-d pool features.
  Every frame of every clip is one image (all frames pooled into one Gaussian per set).

Our videos are float (B, F, C, H, W) in [−1, 1]; they become uint8 by round((x + 1)·127.5) clamped to
[0, 255] — the same values as StyleGAN's ``(x·127.5 + 128).clamp(0, 255).to(uint8)``.

A missing file skips that metric with one message naming the file, where it comes from and where to put
it; nothing else is ever printed under these names (the lab's own metrics are FVD-lab, IS-lab and
FD-frame-lab, see ``pyoco_lab.metrics.lab``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from tqdm.auto import tqdm

from pyoco_lab.data import default_data_root
from pyoco_lab.metrics.frechet import frechet_distance_from_features
from pyoco_lab.metrics.scores import inception_score, splits_for


@dataclass(frozen=True)
class DetectorSpec:
    """A literature network: the metric it serves, its file name, and where the community gets it."""

    metric: str
    filename: str
    network: str
    source: str


I3D = DetectorSpec(
    metric="FVD",
    filename="i3d_torchscript.pt",
    network="I3D (Kinetics-400), TorchScript",
    source="StyleGAN-V's FVD code (https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt)",
)
C3D = DetectorSpec(
    metric="IS",
    filename="c3d_ucf101.pt",
    network="C3D fine-tuned on UCF-101, TorchScript",
    source="StyleGAN-V's video IS code (https://www.dropbox.com/s/jxpu7avzdc9n97q/c3d_ucf101.pt)",
)
INCEPTION = DetectorSpec(
    metric="FID-frame",
    filename="inception-2015-12-05.pt",
    network="Inception-v3 (TF 2015), TorchScript",
    source="StyleGAN2-ADA's metrics "
    "(https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt)",
)
DETECTORS = (I3D, C3D, INCEPTION)


def weights_dir() -> Path:
    """Where the metric weight files are looked up: ``$PYOCO_WEIGHTS``, else ``<data root>/weights``."""
    if os.environ.get("PYOCO_WEIGHTS"):
        return Path(os.environ["PYOCO_WEIGHTS"]).expanduser()
    return Path(default_data_root()) / "weights"


def missing_message(spec: DetectorSpec, directory: Path) -> str:
    """The one line printed when a metric is skipped."""
    return (
        f"{spec.metric} skipped: {spec.filename} ({spec.network}) not found in {directory}; "
        f"get it from {spec.source} and put it there (or set PYOCO_WEIGHTS to its folder)"
    )


def load_detector(
    spec: DetectorSpec, directory: str | Path | None = None, device=None
) -> torch.jit.ScriptModule:
    """Load ``spec``'s TorchScript file from ``directory`` (default ``weights_dir()``), in eval mode."""
    directory = Path(directory) if directory is not None else weights_dir()
    path = directory / spec.filename
    if not path.is_file():
        raise FileNotFoundError(missing_message(spec, directory))
    try:
        with warnings.catch_warnings():
            # torch ≥ 2.9 deprecates TorchScript in favour of torch.export, but these community files exist
            # only as TorchScript; loading them is the point.
            warnings.filterwarnings("ignore", message=r".*torch\.jit", category=DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device or "cpu")
    except RuntimeError as error:
        raise ValueError(
            f"{path} is not a TorchScript file ({error.__class__.__name__}: {str(error).splitlines()[0]}); "
            f"{spec.metric} needs the TorchScript {spec.network} from {spec.source} — state-dict checkpoints "
            "(e.g. TATS's i3d_pretrained_400.pt) need their own model code and are not supported"
        ) from error
    return module.eval()


def videos_to_uint8(videos: torch.Tensor) -> torch.Tensor:
    """Float videos in [−1, 1] → uint8 in [0, 255], same shape (values outside the range are clamped)."""
    if videos.dtype == torch.uint8:
        return videos
    return ((videos.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def i3d_features(
    detector, videos: torch.Tensor, *, batch_size: int = 16, progress: bool = False
) -> np.ndarray:
    """I3D features (N, 400) of (N, F, 3, H, W) videos in [−1, 1] (FVD protocol, see module docstring)."""
    _check_videos(videos, "I3D")

    def run(batch):
        clips = rearrange(videos_to_uint8(batch), "b f c h w -> b c f h w")
        return detector(clips, rescale=True, resize=True, return_features=True)

    return _batched(run, videos, detector, batch_size, progress, "I3D features")


@torch.no_grad()
def c3d_probabilities(
    detector, videos: torch.Tensor, *, batch_size: int = 16, progress: bool = False
) -> np.ndarray:
    """C3D class probabilities (N, 101) of (N, 16, 3, H, W) videos in [−1, 1] (IS protocol)."""
    _check_videos(videos, "C3D")
    if videos.shape[1] != 16:
        raise ValueError(
            f"the UCF-101 C3D classifier takes exactly 16 frames, got {videos.shape[1]}; "
            "evaluate 16-frame samples to report IS"
        )

    def run(batch):
        return detector(rearrange(videos_to_uint8(batch), "b f c h w -> b c f h w"))

    probs = _batched(run, videos, detector, batch_size, progress, "C3D probabilities")
    if (probs < -1e-6).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(
            f"{C3D.filename} returned values that are not class probabilities; it must be the "
            "TorchScript C3D that ends in a softmax (StyleGAN-V's c3d_ucf101.pt)"
        )
    return probs


@torch.no_grad()
def inception_frame_features(
    detector, videos: torch.Tensor, *, batch_size: int = 16, progress: bool = False
) -> np.ndarray:
    """Inception-v3 pool features (N·F, 2048) of every frame of (N, F, 3, H, W) videos in [−1, 1]."""
    _check_videos(videos, "Inception")
    frames = rearrange(videos, "b f c h w -> (b f) 1 c h w")  # one "video" per frame, so batching is shared

    def run(batch):
        return detector(videos_to_uint8(batch[:, 0]), return_features=True)

    return _batched(run, frames, detector, batch_size * videos.shape[1], progress, "Inception features")


def standard_metrics(
    real: torch.Tensor,
    generated: torch.Tensor,
    *,
    directory: str | Path | None = None,
    device=None,
    batch_size: int = 16,
    num_splits: int = 10,
    progress: bool = True,
) -> tuple[dict[str, float], dict[str, str]]:
    """FVD, IS (of ``generated``) and FID-frame for every network whose file is present.

    Returns ``(values, skipped)``: ``values`` maps metric names ("FVD", "IS", "IS-std", "FID-frame") to
    numbers, ``skipped`` maps each metric that could not be computed to the one-line reason. Only missing
    files are skipped; a present but wrong file raises.
    """
    directory = Path(directory) if directory is not None else weights_dir()
    values: dict[str, float] = {}
    skipped: dict[str, str] = {}
    options = dict(batch_size=batch_size, progress=progress)
    for spec in DETECTORS:
        try:
            detector = load_detector(spec, directory, device)
        except FileNotFoundError as missing:
            skipped[spec.metric] = str(missing)
            continue
        if spec is I3D:
            fake, ref = i3d_features(detector, generated, **options), i3d_features(detector, real, **options)
            values["FVD"] = frechet_distance_from_features(ref, fake).distance
        elif spec is C3D:
            if generated.shape[1] != 16:
                skipped["IS"] = f"IS skipped: C3D needs 16-frame clips, samples have {generated.shape[1]}"
                continue
            values["IS"], values["IS-std"] = inception_score(
                c3d_probabilities(detector, generated, **options),
                num_splits=splits_for(len(generated), num_splits),
            )
        else:
            fake = inception_frame_features(detector, generated, **options)
            ref = inception_frame_features(detector, real, **options)
            values["FID-frame"] = frechet_distance_from_features(ref, fake).distance
    return values, skipped


def _check_videos(videos: torch.Tensor, network: str) -> None:
    if not isinstance(videos, torch.Tensor) or videos.ndim != 5 or videos.shape[2] != 3:
        shape = tuple(videos.shape) if hasattr(videos, "shape") else type(videos).__name__
        raise ValueError(f"{network} takes RGB videos of shape (N, F, 3, H, W) in [-1, 1], got {shape}")


def _batched(
    run: Callable[[torch.Tensor], torch.Tensor], videos, detector, batch_size: int, progress: bool, what: str
) -> np.ndarray:
    device = next((p.device for p in detector.parameters()), torch.device("cpu"))
    outputs = []
    for start in tqdm(range(0, len(videos), batch_size), desc=what, disable=not progress, leave=False):
        out = run(videos[start : start + batch_size].to(device))
        outputs.append(out.detach().double().cpu().reshape(out.shape[0], -1))
    return torch.cat(outputs).numpy()
