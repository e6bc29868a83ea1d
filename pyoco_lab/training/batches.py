"""Data and batches: the datasets of a config, the resumable step-indexed data order, joint
image-video batches (A.1 (7)) and the per-step conditioning (class labels, A.2 captions -- each
appended image its own -- and the conditioning frames of the interpolation and SR stages).

The data order is a pure function of the position in an endless shuffled stream
(:func:`data_indices`): that is the data loader's whole resumable state, and it lets every
``torchrun`` rank take its own slice of the same global batch.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from einops import rearrange

from pyoco_lab import data, models
from pyoco_lab.data.prompts import captions
from pyoco_lab.models.cascade import SR_FACTOR, interpolation_condition, interpolation_frameskip, sr_condition
from pyoco_lab.training.config import TrainConfig, text_specs
from pyoco_lab.training.distributed import DistEnv
from pyoco_lab.training.randomness import (
    STREAM_DATA,
    STREAM_IMAGES,
    STREAM_LABELS,
    STREAM_TEXT,
    step_generator,
    step_seed,
)


def build_datasets(
    config: TrainConfig, split: str = "train", *, build_missing: bool = False, progress: bool = True
):
    """(main dataset, image dataset for joint training or None) for the config's phase.

    ``build_missing`` builds the embedded dataset when absent (it is made from package-shipped
    imagery, no download; ``progress`` shows its bar); otherwise missing data raises FileNotFoundError
    naming the command that prepares it.
    """
    root, size, f = config.data_root, config.resolution, config.num_frames
    if config.dataset == "embedded":
        # The stored bytes travel to the device, a quarter of float32's; training_batch converts there.
        opts = {"build_if_missing": build_missing, "uint8": True, "progress": progress}
        frames = functools.partial(data.EmbeddedFramesDataset, root, size, split, **opts)
        clips = functools.partial(data.EmbeddedVideoDataset, root, size, split, f, **opts)
    else:
        frames = functools.partial(data.UCF101Frames, root=root, resolution=size, split=split)
        clips = functools.partial(data.UCF101Clips, root=root, resolution=size, split=split, num_frames=f)
    if config.phase == "image":
        return frames(), None
    return clips(), (frames() if config.joint_images else None)


def num_classes_of(dataset) -> int:
    return int(getattr(dataset, "num_classes", 0))


# ----------------------------------------------------------------------------------------------
# The data order: step s of the run reads positions [s * B, (s + 1) * B) of the stream.


def data_indices(dataset_size: int, seed: int, stream: int, start: int, count: int) -> list[int]:
    """Indices of positions ``start .. start+count-1`` of an endless shuffled stream over the data.

    Epoch ``e`` is a permutation drawn from a generator seeded by (seed, stream, e), so the data
    order is a pure function of the position -- that is the data loader's resumable state.
    """
    indices, position = [], start
    while len(indices) < count:
        epoch, offset = divmod(position, dataset_size)
        order = _epoch_order(dataset_size, seed, stream, epoch)
        take = min(count - len(indices), dataset_size - offset)
        indices.extend(order[offset : offset + take].tolist())
        position += take
    return indices


@functools.lru_cache(maxsize=4)
def _epoch_order(dataset_size: int, seed: int, stream: int, epoch: int) -> torch.Tensor:
    # Cached: a large frame dataset would otherwise redraw a million-entry permutation every step.
    return torch.randperm(dataset_size, generator=step_generator(seed, stream, epoch))


class StepBatches(torch.utils.data.Sampler):
    """Yields this rank's slice of the global batch for steps ``start_step .. steps-1``.

    Each entry is (dataset index, per-item seed): the item seed makes random crops or clip
    offsets inside the dataset a function of the position too, whichever worker loads it.
    """

    def __init__(self, dataset_size, global_batch, per_item, seed, stream, start_step, steps, env: DistEnv):
        self.args = (dataset_size, global_batch, per_item, seed, stream, start_step, steps)
        self.env = env

    def __len__(self) -> int:
        return self.args[6] - self.args[5]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        size, global_batch, per_item, seed, stream, start_step, steps = self.args
        local = global_batch // self.env.world_size * per_item
        for step in range(start_step, steps):
            start = (step * global_batch + self.env.rank * (global_batch // self.env.world_size)) * per_item
            indices = data_indices(size, seed, stream, start, local)
            yield [(index, step_seed(seed, stream, start + i)) for i, index in enumerate(indices)]


class SeededItems(torch.utils.data.Dataset):
    """Loads item ``index`` with every global RNG seeded by the item's own seed."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        random.seed(seed)
        np.random.seed(seed % 2**32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


def _collate(items: list[dict], key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, labels): x as the dataset stores it -- uint8 bytes (embedded data) stay uint8, anything
    else (UCF-101's resized frames) becomes float32 in [-1, 1]; :func:`training_batch` converts."""
    x = torch.stack([torch.as_tensor(item[key]) for item in items])
    if x.dtype != torch.uint8:
        x = x.to(torch.float32)
    labels = torch.tensor([int(item.get("label", 0)) for item in items], dtype=torch.long)
    return x, labels


def step_loader(
    dataset,
    key: str,
    config: TrainConfig,
    env: DistEnv,
    stream: int,
    per_item: int,
    start_step: int,
    device: torch.device | str = "cpu",
) -> torch.utils.data.DataLoader:
    """The DataLoader of one stream of a run's batches; batches land in pinned memory when the run
    is on CUDA, so :func:`training_batch` copies them without blocking the host."""
    sampler = StepBatches(
        len(dataset), config.batch_size, per_item, config.seed, stream, start_step, config.steps, env
    )
    return torch.utils.data.DataLoader(
        SeededItems(dataset),
        batch_sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=functools.partial(_collate, key=key),
        pin_memory=torch.device(device).type == "cuda",
        persistent_workers=False,
        # not a fork of the trainer: video decoders' and CUDA's native threads and locks do not survive one
        multiprocessing_context="forkserver" if config.num_workers > 0 else None,
    )


def step_batches(
    config: TrainConfig,
    dataset,
    image_dataset,
    env: DistEnv,
    start_step: int,
    device: torch.device | str = "cpu",
):
    """Iterator of (clips or frames, labels, appended images or None, their labels or None), one per
    step from ``start_step``; appended images and their labels are (B * N, ...), clip by clip.
    Pixels come as the dataset stores them (uint8 or float32, see :func:`_collate`), pinned for a
    CUDA ``device``."""
    video = config.phase == "video"
    key = "video" if video else "image"
    main = step_loader(dataset, key, config, env, STREAM_DATA, 1, start_step, device)
    if image_dataset is None:
        return ((x, labels, None, None) for x, labels in main)
    images = step_loader(
        image_dataset, "image", config, env, STREAM_IMAGES, config.joint_images, start_step, device
    )
    return (
        (x, labels, appended, appended_labels)
        for (x, labels), (appended, appended_labels) in zip(main, images, strict=False)
    )


def to_device(x: torch.Tensor, device) -> torch.Tensor:
    """A loader batch on ``device`` as float32 in [-1, 1]: copied as stored (non-blocking from pinned
    memory), converted there -- the very values the workers used to produce (:func:`data.to_unit_range`)."""
    return data.to_unit_range(x.to(device, non_blocking=True))


def training_batch(
    config: TrainConfig, x: torch.Tensor, appended: torch.Tensor | None, device
) -> torch.Tensor:
    """x (B, F[+N], C, H, W) or (B, C, H, W) on ``device``, float32 in [-1, 1]: a joint batch appends
    N frames after each clip (A.1 (7)). Each part is copied on its own and joined on the device: a
    concatenation on the host would be a fresh, unpinned tensor, and its copy would block."""
    x = to_device(x, device)
    if appended is not None:  # (B * N, C, H, W) -> appended along the frame axis
        appended = rearrange(to_device(appended, device), "(b n) c h w -> b n c h w", n=config.joint_images)
        x = torch.cat([x, appended], dim=1)
    return x


# ----------------------------------------------------------------------------------------------
# Conditioning of one step.


def network_conditioning(labels, num_video_frames, x) -> dict[str, Any]:
    """Keyword arguments of the network: class labels ((B,) or per frame (B, F)) and, for joint
    batches, the video length."""
    cond = {}
    if labels is not None:
        cond["class_labels"] = labels
    if num_video_frames is not None and x.ndim == 5 and num_video_frames < x.shape[1]:
        cond["num_video_frames"] = num_video_frames
    return cond


def dropped_labels(
    config: TrainConfig,
    step: int,
    labels: torch.Tensor,
    rows: slice,
    image_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Class labels with probability ``label_dropout`` replaced by -1 (unconditional, for guidance).

    (B,) for plain batches. A joint batch gets one label per frame, (B, F + N): the clip's label on
    its F frames and each appended image's own label (``image_labels``, (B * N,)), each dropped on
    its own. The images' draws follow the clips' from the step's generator, so the clips' labels
    are those of a plain batch, and a rank draws for the whole global batch and takes its rows.
    """
    g = step_generator(config.seed, STREAM_LABELS, step)
    drop = torch.rand(config.batch_size, generator=g)
    clips = torch.where(drop[rows].to(labels.device) < config.label_dropout, -1, labels)
    if image_labels is None:
        return clips
    n = config.joint_images
    drop = torch.rand(config.batch_size * n, generator=g)[rows.start * n : rows.stop * n]
    images = torch.where(drop.to(image_labels.device) < config.label_dropout, -1, image_labels)
    return torch.cat([clips[:, None].expand(-1, config.num_frames), images.reshape(-1, n)], dim=1)


class CaptionBank:
    """Pre-encoded A.2 captions of every class: ten templated captions per class name, encoded once.

    A training step picks one caption per clip -- and one per appended image, of the image's own
    class -- (from a generator seeded by the step, so resume and DDP stay exact) and drops each
    encoder's embedding with its own probability (Table F), per clip and per image.
    """

    def __init__(self, config: TrainConfig, class_names, device):
        self.specs, self.drop_probs = text_specs(config)
        if not class_names:
            raise ValueError(
                "text conditioning needs a dataset with class names to caption; drop --text-encoders"
            )
        prompts = [caption for name in class_names for caption in captions(name)]
        self.per_class = len(prompts) // len(class_names)
        self.tokens, self.masks = [], []
        for spec in self.specs:
            tokens, mask = models.load_text_encoder(spec, device="cpu").encode(prompts)
            self.tokens.append(tokens.to(device))
            self.masks.append(mask.to(device))

    def conditioning(
        self,
        labels: torch.Tensor,
        config: TrainConfig,
        step: int,
        lo: int,
        hi: int,
        image_labels: torch.Tensor | None = None,
    ) -> dict:
        """``text_embeddings`` / ``text_mask`` for the rank's slice [lo, hi) of the global batch.

        Per sample, (B, L, D) / (B, L), for plain batches. With ``image_labels`` (B * N,) of a joint
        batch, per frame, (B, F + N, L, D) / (B, F + N, L): the clip's caption on its F frames, then
        each appended image's own. The images' draws come after the clips', as in :func:`dropped_labels`.
        """
        g = step_generator(config.seed, STREAM_TEXT, step)
        total = config.batch_size
        template = torch.randint(self.per_class, (total,), generator=g)[lo:hi]
        index = labels.cpu() * self.per_class + template
        masks = [m[index] for m in self.masks]
        masks = models.drop_text(masks, self.drop_probs, generator=g, rows=slice(lo, hi), total=total)
        tokens = [t[index] for t in self.tokens]
        if image_labels is None:
            return {"text_embeddings": tokens, "text_mask": masks}
        n, frames = config.joint_images, config.num_frames
        rows = slice(lo * n, hi * n)
        template = torch.randint(self.per_class, (total * n,), generator=g)[rows]
        index = image_labels.cpu() * self.per_class + template
        image_masks = models.drop_text(
            [m[index] for m in self.masks], self.drop_probs, generator=g, rows=rows, total=total * n
        )

        def per_frame(clip, image):  # clip (B, L, ...) on F frames, then the (B * N, L, ...) images
            clip = clip[:, None].expand(-1, frames, *clip.shape[1:])
            return torch.cat([clip, image.reshape(-1, n, *image.shape[1:])], dim=1)

        return {
            "text_embeddings": [
                per_frame(t, t_img[index]) for t, t_img in zip(tokens, self.tokens, strict=True)
            ],
            "text_mask": [per_frame(m, m_img) for m, m_img in zip(masks, image_masks, strict=True)],
        }


# ----------------------------------------------------------------------------------------------
# The conditioning frames of the interpolation and super-resolution stages (Fig. 3, A.1 (3)),
# built exactly as models.cascade builds them at sampling time.


def stage_condition(config: TrainConfig, x: torch.Tensor) -> torch.Tensor | None:
    """``cond`` of the network for clean frames x: the known frames of each clip (every k-th, zeros
    between them) for interpolation; the frames at 1/SR_FACTOR size, upsampled back, for SR."""
    if config.stage == "interpolation":
        return interpolation_condition(x, interpolation_frameskip(config.num_frames))
    if config.stage == "sr":
        return sr_condition(x, config.resolution // SR_FACTOR)
    return None


def sample_condition(config: TrainConfig, dataset, device) -> torch.Tensor | None:
    """``cond`` of the periodic samples of an interpolation / SR run: that of the first
    ``num_samples`` items of the training data (None for the base stage)."""
    if config.stage == "base":
        return None
    key = "video" if config.phase == "video" else "image"
    items = [dataset[i % len(dataset)] for i in range(config.num_samples)]
    x, _ = _collate(items, key)
    return stage_condition(config, to_device(x, device))
