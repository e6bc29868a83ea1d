"""The model's birth: the EDM-preconditioned U-Net a config names, its inflation from an image
model into a video model (Section 4 / A.1: 2D -> 3D, new zero-initialised temporal layers), and
the checks that an ``--init`` image model fits the video config -- made before any weights load.
"""

from __future__ import annotations

from dataclasses import fields, replace

from pyoco_lab import edm, models
from pyoco_lab.training.config import TrainConfig, text_specs


def unet_config(config: TrainConfig, num_classes: int) -> models.UNetConfig:
    """The ``models.CONFIGS`` entry the config names, at its resolution, phase and conditioning."""
    if config.model not in models.CONFIGS:
        raise ValueError(f"unknown model {config.model!r}; choose one of {', '.join(models.CONFIGS)}")
    unet = models.CONFIGS[config.model]
    wanted = {
        "resolution": config.resolution,
        "num_classes": num_classes if config.class_conditional else 0,
        "video": config.phase == "video",
        "grad_checkpointing": config.grad_checkpointing,
    }
    specs, drop_probs = text_specs(config)
    if specs:  # cross-attention to text in the spatial attention blocks only (A.1 (5))
        wanted["text_dims"] = tuple(models.text_dim(spec) for spec in specs)
        wanted["text_drop_probs"] = drop_probs
        wanted["cross_attention_resolutions"] = unet.cross_attention_resolutions or unet.attention_resolutions
    names = {f.name for f in fields(unet)}
    return replace(unet, **{k: v for k, v in wanted.items() if k in names})


def build_network(config: TrainConfig, *, num_classes: int = 0) -> edm.Denoiser:
    """The EDM-preconditioned U-Net the config names (image model in the image phase)."""
    return models.build_denoiser(unet_config(config, num_classes))


def inflate_denoiser(
    image_denoiser: edm.Denoiser, video_config: TrainConfig, num_classes: int
) -> edm.Denoiser:
    """Video denoiser initialised from an image denoiser (Section 4: 2D -> 3D, new temporal layers)."""
    video = models.inflate(image_denoiser.net)
    denoiser = edm.Denoiser(video, sigma_data=image_denoiser.sigma_data)
    expected = build_network(video_config, num_classes=num_classes)
    ours, theirs = denoiser.state_dict(), expected.state_dict()
    if ours.keys() != theirs.keys() or any(ours[k].shape != theirs[k].shape for k in ours):
        raise ValueError(
            "the --init image model does not fit the video config "
            f"(model={video_config.model!r}, resolution={video_config.resolution}); "
            "pass the same --model/--resolution/--class-conditional as the image run"
        )
    return denoiser


def check_init_fits(image_config: TrainConfig, config: TrainConfig, init) -> None:
    """Fail before any work when the --init run cannot be inflated into this video config."""
    if image_config.phase != "image":
        raise ValueError(f"--init {init} is a {image_config.phase} run; pass an image-phase run")
    for name in ("model", "resolution"):
        ours, theirs = getattr(config, name), getattr(image_config, name)
        if ours != theirs:
            raise ValueError(
                f"the --init image run does not fit the video config ({name} {theirs!r} there, {ours!r} "
                f"here); pass --{name} {theirs} (or pre-train an image model with --{name} {ours})"
            )


def check_architecture_fits(
    image_config: TrainConfig, image_num_classes: int, config: TrainConfig, num_classes: int
) -> None:
    """Compare the image and video architectures on the meta device (cheap, before any weights)."""
    image = unet_config(image_config, image_num_classes)
    try:
        models.image_state_dict_compatible(image, unet_config(config, num_classes))
    except ValueError as error:
        raise ValueError(f"the --init image run does not fit the video config: {error}") from None
