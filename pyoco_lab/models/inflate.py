"""Inflating an image U-Net into a video U-Net (Section 4, Appendix A.1 (1), (2), (6)).

The video network shares every spatial parameter with the image network under the same name
(3x3 convolutions act per frame, i.e. as 1x3x3 convolutions); it only adds temporal layers whose
output projections start at zero. Loading the image weights therefore reproduces the image model
frame by frame until finetuning moves the temporal layers away from zero.

The temporal interpolation model starts from the finetuned base video model (A.1 (6)): the same
network with extra input channels for the known frames (A.1 (3)), whose weights in the input
convolution start at zero (:func:`add_cond_channels`), so it starts as the base model.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from pyoco_lab.models.config import UNetConfig
from pyoco_lab.models.unet import VideoUNet, is_temporal_key


def inflate(image_model: VideoUNet) -> VideoUNet:
    """A video U-Net initialised from `image_model` (same device and dtype; temporal layers new)."""
    if not isinstance(image_model, VideoUNet):
        raise ValueError(
            f"inflate expects a pyoco_lab.models.VideoUNet, got {type(image_model).__name__}; "
            "pass denoiser.net when you hold an edm.Denoiser"
        )
    param = next(image_model.parameters())
    video = VideoUNet(replace(image_model.config, video=True)).to(device=param.device, dtype=param.dtype)
    video.load_image_state_dict(image_model.state_dict())
    return video


def add_cond_channels(model: VideoUNet, cond_channels: int) -> VideoUNet:
    """``model`` with ``cond_channels`` conditioning input channels, the new ones zero-initialised.

    Every weight is copied; the input convolution's columns for the added channels are zero, so
    the result ignores its condition -- it equals ``model`` -- until training moves them.
    """
    if not isinstance(model, VideoUNet):
        raise ValueError(f"add_cond_channels expects a VideoUNet, got {type(model).__name__}")
    if cond_channels < model.config.cond_channels:
        raise ValueError(
            f"the model already has {model.config.cond_channels} cond channels (> {cond_channels})"
        )
    param = next(model.parameters())
    wider = VideoUNet(replace(model.config, cond_channels=cond_channels)).to(
        device=param.device, dtype=param.dtype
    )
    state = dict(model.state_dict())
    old = state["input_conv.weight"]
    weight = old.new_zeros(
        old.shape[0], old.shape[1] + cond_channels - model.config.cond_channels, *old.shape[2:]
    )
    weight[:, : old.shape[1]] = old
    state["input_conv.weight"] = weight
    wider.load_state_dict(state)
    return wider


def cond_extension_compatible(base_config: UNetConfig, config: UNetConfig) -> None:
    """Raise ValueError naming the mismatch unless ``config`` is ``base_config`` plus cond channels
    (the check of an interpolation run's ``--init`` base run, on the meta device)."""
    with torch.device("meta"):
        base = VideoUNet(replace(base_config, video=True)).state_dict()
        wide = VideoUNet(replace(config, video=True, cond_channels=base_config.cond_channels)).state_dict()
    different = [
        k
        for k in base.keys() | wide.keys()
        if k not in base or k not in wide or base[k].shape != wide[k].shape
    ]
    if different:
        raise ValueError(
            f"the base model does not fit the interpolation model: {len(different)} key(s) differ, e.g. "
            f"{sorted(different)[:3]}; use the same --model, --resolution, classes and text for both"
        )


def image_state_dict_compatible(image_config: UNetConfig, video_config: UNetConfig) -> None:
    """Raise ValueError naming the mismatch if an image checkpoint cannot initialise the video model.

    Both networks are built on the meta device, so this is cheap even for the 1B-parameter configs.
    """
    with torch.device("meta"):
        image = VideoUNet(replace(image_config, video=False)).state_dict()
        video = VideoUNet(replace(video_config, video=True)).state_dict()
    unexpected = [k for k in image if k not in video]
    wrong = [
        f"{k} {tuple(image[k].shape)} vs {tuple(video[k].shape)}"
        for k in image
        if k in video and image[k].shape != video[k].shape
    ]
    missing = [k for k in video if k not in image and not is_temporal_key(k)]
    if unexpected or wrong or missing:
        raise ValueError(
            "image model config does not fit the video model config: "
            f"{len(unexpected)} unexpected key(s) {unexpected[:3]}, "
            f"{len(wrong)} shape mismatch(es) {wrong[:3]}, "
            f"{len(missing)} missing non-temporal key(s) {missing[:3]}; use the same channels, levels, "
            "attention resolutions, classes, text and conditioning for both phases"
        )
