"""The paper's metrics (FVD, IS, frame FID) with the literature's networks, from local weight files.

Nothing is downloaded: put the files in ``weights_dir()`` (``$PYOCO_WEIGHTS``, else ``<data root>/weights``).
All three are TorchScript files loaded with ``torch.jit.load`` (no pickle code runs), in the formats the
video-generation literature shares (StyleGAN-V / StyleGAN2-ADA metric code):

* FVD — ``i3d_torchscript.pt``: I3D trained on Kinetics-400 (the tf.hub FVD weights). Input uint8
  (B, 3, T, H, W); ``rescale=True, resize=True`` make the script map [0, 255] → [−1, 1] and resize to
  224×224 itself; ``return_features=True`` returns the 400-d pre-softmax features.
  Protocol: 16-frame clips, 2,048 real vs 2,048 generated (``fvd2048_16f``). FVD is *defined* on 16-frame
  clips: on clips of another length the same computation is reported as ``FVD-<F>f`` (e.g. ``FVD-8f``),
  never as ``FVD`` (:func:`fvd_name`), and "FVD" is listed as skipped with the reason.
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

Every other departure from the protocol (fewer than 2,048 generated or real clips, another resolution or
dataset, a reference set other than all of UCF-101) keeps the name but is listed by :func:`protocol_record`,
which ``eval.json`` stores as ``settings.protocol`` (``{"name": "fvd2048_16f", "follows": bool,
"deviations": [...]}``).

A present file is checked by :func:`check_detector` before any sampling: it must load as TorchScript, run
on one dummy clip of the protocol's shape and return the expected width (I3D 400, C3D 101, Inception 2048),
else ``ValueError``. Its sha256 is computed and compared with ``DetectorSpec.sha256``, the published hash;
the lab could not download the files, so none is recorded and every check warns (``WeightsHashWarning``)
with the file's hash, to be recorded once verified.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from pyoco_lab.data import default_data_root
from pyoco_lab.fileio import atomic_write_bytes, json_digest, sha256_file
from pyoco_lab.metrics.frechet import FeatureStats, frechet_distance
from pyoco_lab.metrics.scores import inception_score, splits_for
from pyoco_lab.progress import tqdm


@dataclass(frozen=True)
class DetectorSpec:
    """A literature network: the metric it serves, its file, where the community gets it, what it returns.

    ``width`` is the size of its output per input (features or class probabilities); ``sha256`` is the
    published hash of the file, ``None`` while the lab has none recorded (it could not download the files).
    """

    metric: str
    filename: str
    network: str
    source: str
    width: int
    output: str
    sha256: str | None = None


class WeightsHashWarning(UserWarning):
    """A metric weight file whose sha256 differs from the published one, or has none recorded to compare."""


@dataclass(frozen=True)
class DetectorCheck:
    """What :func:`check_detector` found: the file, its sha256, the published one, its output width."""

    spec: DetectorSpec
    path: Path
    sha256: str
    width: int

    def record(self) -> dict:
        """JSON-ready summary for ``eval.json`` settings."""
        return {
            "file": str(self.path),
            "sha256": self.sha256,
            "published_sha256": self.spec.sha256,
            "output_width": self.width,
        }


I3D = DetectorSpec(
    metric="FVD",
    filename="i3d_torchscript.pt",
    network="I3D (Kinetics-400), TorchScript",
    source="StyleGAN-V's FVD code (https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt)",
    width=400,
    output="400-d features",
)
C3D = DetectorSpec(
    metric="IS",
    filename="c3d_ucf101.pt",
    network="C3D fine-tuned on UCF-101, TorchScript",
    source="StyleGAN-V's video IS code (https://www.dropbox.com/s/jxpu7avzdc9n97q/c3d_ucf101.pt)",
    width=101,
    output="101 class probabilities",
)
INCEPTION = DetectorSpec(
    metric="FID-frame",
    filename="inception-2015-12-05.pt",
    network="Inception-v3 (TF 2015), TorchScript",
    source="StyleGAN2-ADA's metrics "
    "(https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt)",
    width=2048,
    output="2048-d pool features",
)
DETECTORS = (I3D, C3D, INCEPTION)

# The literature's protocol (StyleGAN-V's ``fvd2048_16f``; IS on UCF-101 uses the same 16 frames and 2,048
# samples, in 10 splits) and the paper's UCF-101 setting (16 x 64 x 64 clips, the 13,320 videos).
PROTOCOL = "fvd2048_16f"
PROTOCOL_FRAMES = 16
PROTOCOL_SAMPLES = 2048
PROTOCOL_RESOLUTION = 64


def fvd_name(num_frames: int) -> str:
    """The name the I3D Fréchet distance is reported under: "FVD" for 16-frame clips, else "FVD-<F>f"."""
    return "FVD" if int(num_frames) == PROTOCOL_FRAMES else f"FVD-{int(num_frames)}f"


def fvd_length_message(num_frames: int) -> str:
    """Why "FVD" is absent for clips that are not 16 frames long (what is reported instead)."""
    return (
        f"FVD skipped: FVD ({PROTOCOL}) is defined on {PROTOCOL_FRAMES}-frame clips, these have "
        f"{num_frames}; the I3D distance is reported as {fvd_name(num_frames)}, "
        "which is not comparable with published FVD"
    )


def protocol_record(
    *,
    num_frames: int,
    num_generated: int,
    num_real: int,
    resolution: int,
    dataset: str,
    reference_split: str,
) -> dict:
    """``{"name": "fvd2048_16f", "follows": bool, "deviations": [...]}``: how an evaluation departs from
    the protocol behind the paper's FVD / IS / FID numbers (one plain sentence per departure)."""
    deviations = []
    if num_frames != PROTOCOL_FRAMES:
        deviations.append(
            f"{num_frames}-frame clips (the protocol's are {PROTOCOL_FRAMES}): the I3D distance is reported "
            f"as {fvd_name(num_frames)}, not FVD, and IS (C3D takes 16 frames) is skipped"
        )
    if num_generated < PROTOCOL_SAMPLES:
        deviations.append(
            f"{num_generated} generated clips (protocol: {PROTOCOL_SAMPLES}); Fréchet distances are biased "
            "upwards at small N and IS downwards"
        )
    if num_real < PROTOCOL_SAMPLES:
        deviations.append(f"{num_real} real reference clips (protocol: {PROTOCOL_SAMPLES})")
    if resolution != PROTOCOL_RESOLUTION:
        deviations.append(
            f"{resolution}x{resolution} px clips (the paper's UCF-101 clips are {PROTOCOL_RESOLUTION}x"
            f"{PROTOCOL_RESOLUTION}; the networks resize internally, which changes the features)"
        )
    if dataset != "ucf101":
        deviations.append(f"the {dataset} dataset, not UCF-101: no number is comparable with the paper's")
    if reference_split != "all":
        deviations.append(
            f"real statistics from the {reference_split} split only (the paper's UCF-101 setting is all "
            "13,320 videos, reference_split='all'; papers differ, so compare only numbers on the same split)"
        )
    return {"name": PROTOCOL, "follows": not deviations, "deviations": deviations}


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


def weights_sha256(model: torch.nn.Module) -> str:
    """Hex sha256 of a network's weights: each state-dict entry's name, dtype, shape and bytes, by name.

    Unlike a file's hash it ignores what a file carries besides the weights (safetensors metadata such as a
    training report with its wall time), so two machines that train bitwise-identical weights agree on it.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu")
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def used_detectors(directory: str | Path, num_frames: int) -> list[tuple[DetectorSpec, Path]]:
    """(spec, path) of every literature network whose file is present and that scores ``num_frames`` clips.

    C3D takes exactly 16 frames, so its file is not used (IS is skipped) for other clip lengths.
    """
    directory = Path(directory)
    return [
        (spec, directory / spec.filename)
        for spec in DETECTORS
        if (directory / spec.filename).is_file() and (spec.metric != "IS" or num_frames == 16)
    ]


def hash_message(spec: DetectorSpec, path: Path, sha256: str) -> str | None:
    """The warning for a file whose hash is not the published one (None when it matches)."""
    if spec.sha256 is None:
        return (
            f"{path}: sha256 {sha256}; no published hash recorded in the lab; record it in DetectorSpec "
            f"({spec.metric}: pyoco_lab.metrics.networks) once the file is verified against {spec.source}"
        )
    if sha256.lower() != spec.sha256.lower():
        return (
            f"{path}: sha256 {sha256} differs from the published {spec.sha256} for {spec.network}; "
            f"the {spec.metric} it gives is not the literature's: get the file again from {spec.source}"
        )
    return None


@torch.no_grad()
def check_detector(
    spec: DetectorSpec,
    directory: str | Path | None = None,
    *,
    num_frames: int = 16,
    resolution: int = 64,
    device=None,
) -> DetectorCheck:
    """Load ``spec``'s file, run it once on a dummy clip of the protocol's shape, check its width, hash it.

    The dummy is one clip of ``num_frames`` × ``resolution``² (16 frames for C3D, whose protocol is fixed;
    one frame for Inception), fed through the same code path as the metric. A wrong width — e.g. another
    TorchScript network saved under the I3D name — raises ``ValueError`` naming the file, both widths and
    the fix; a hash that is not the published one warns (``WeightsHashWarning``) naming both hashes.
    """
    directory = Path(directory) if directory is not None else weights_dir()
    path = directory / spec.filename
    detector = load_detector(spec, directory, device)
    frames = {"FVD": num_frames, "IS": 16, "FID-frame": 1}[spec.metric]
    dummy = torch.zeros(1, frames, 3, resolution, resolution)
    shape = (
        f"1, 3, {resolution}, {resolution}" if frames == 1 else f"1, 3, {frames}, {resolution}, {resolution}"
    )
    features = {"FVD": i3d_features, "IS": c3d_probabilities, "FID-frame": inception_frame_features}[
        spec.metric
    ]
    try:
        out = features(detector, dummy)
    except (RuntimeError, torch.jit.Error) as error:
        raise ValueError(
            f"{path} failed on a dummy input of the protocol's shape ({shape}) "
            f"({error.__class__.__name__}: {str(error).strip().splitlines()[-1]}); "
            f"{spec.metric} needs the TorchScript {spec.network} from {spec.source}"
        ) from error
    width = int(out.shape[-1])
    if width != spec.width:
        raise ValueError(
            f"{path} returns {width} values per input, {spec.metric} expects {spec.width} "
            f"({spec.output} of {spec.network}): it is not that network; replace it with {spec.filename} "
            f"from {spec.source}, or remove it to skip {spec.metric}"
        )
    sha256 = sha256_file(path)
    message = hash_message(spec, path, sha256)
    if message is not None:
        warnings.warn(message, WeightsHashWarning, stacklevel=2)
    return DetectorCheck(spec, path, sha256, width)


def check_detectors(
    directory: str | Path | None = None, *, num_frames: int = 16, resolution: int = 64, device=None
) -> dict[str, DetectorCheck]:
    """:func:`check_detector` for every present file, by file name (missing files are left to the skips)."""
    directory = Path(directory) if directory is not None else weights_dir()
    return {
        spec.filename: check_detector(
            spec, directory, num_frames=num_frames, resolution=resolution, device=device
        )
        for spec in DETECTORS
        if (directory / spec.filename).is_file()
    }


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
    reference_cache: str | Path | None = None,
    reference_key: dict | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """FVD, IS (of ``generated``) and FID-frame for every network whose file is present.

    ``real`` may be a tensor or a zero-argument callable returning one, called only if some statistic is
    not cached. With ``reference_cache`` (a folder) and ``reference_key`` (what decides the real set: dataset,
    split, clip seed, resolution, frames, count, protocol), each network's Gaussian fit of the real features
    is stored once per (network, weights file sha256, key) as ``reference-<metric>-<hash>.npz`` -- as
    clean-fid and EDM keep their reference ``.npz`` files -- so a sweep does not recompute it for every run.

    Returns ``(values, skipped)``: ``values`` maps metric names ("FVD", "IS", "IS-std", "FID-frame") to
    numbers, ``skipped`` maps each metric that could not be computed to the one-line reason. Only missing
    files are skipped; a present but wrong file raises. Clips that are not 16 frames long get their I3D
    distance as ``FVD-<F>f`` (:func:`fvd_name`) and "FVD" in ``skipped`` with the reason.
    """
    directory = Path(directory) if directory is not None else weights_dir()
    values: dict[str, float] = {}
    skipped: dict[str, str] = {}
    options = dict(batch_size=batch_size, progress=progress)
    loaded: list[torch.Tensor] = []

    def real_clips() -> torch.Tensor:
        if not loaded:
            loaded.append(real() if callable(real) else real)
        return loaded[0]

    def reference(spec: DetectorSpec, features: Callable) -> FeatureStats:
        """The real set's Gaussian fit for ``spec``, from the cache when it holds it."""
        path = None
        if reference_cache is not None and reference_key is not None:
            payload = {
                "metric": spec.metric,
                "weights": sha256_file(directory / spec.filename),
                **reference_key,
            }
            digest = json_digest(payload, 16, default=str)
            path = Path(reference_cache) / f"reference-{spec.metric}-{digest}.npz"
            if path.is_file():
                with np.load(path) as stored:
                    return FeatureStats(stored["mean"], stored["cov"], int(stored["count"]))
        stats = FeatureStats.from_features(features(real_clips()))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            np.savez(buffer, mean=stats.mean, cov=stats.cov, count=stats.count)
            atomic_write_bytes(path, buffer.getvalue())
        return stats

    for spec in DETECTORS:
        try:
            detector = load_detector(spec, directory, device)
        except FileNotFoundError as missing:
            skipped[spec.metric] = str(missing)
            continue
        if spec.metric == "FVD":
            fake = FeatureStats.from_features(i3d_features(detector, generated, **options))
            ref = reference(spec, lambda clips, d=detector: i3d_features(d, clips, **options))
            # FVD is defined on 16 frames: at another length the number gets a name that says so.
            values[fvd_name(generated.shape[1])] = frechet_distance(
                ref.mean, ref.cov, fake.mean, fake.cov
            ).distance
            if generated.shape[1] != PROTOCOL_FRAMES:
                skipped["FVD"] = fvd_length_message(generated.shape[1])
        elif spec.metric == "IS":
            if generated.shape[1] != 16:
                skipped["IS"] = f"IS skipped: C3D needs 16-frame clips, samples have {generated.shape[1]}"
                continue
            values["IS"], values["IS-std"] = inception_score(
                c3d_probabilities(detector, generated, **options),
                num_splits=splits_for(len(generated), num_splits),
            )
        else:
            fake = FeatureStats.from_features(inception_frame_features(detector, generated, **options))
            ref = reference(spec, lambda clips, d=detector: inception_frame_features(d, clips, **options))
            values["FID-frame"] = frechet_distance(ref.mean, ref.cov, fake.mean, fake.cov).distance
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
