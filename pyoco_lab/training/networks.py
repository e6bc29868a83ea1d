"""The model's birth: the EDM-preconditioned U-Net a config names, its inflation from an image
model into a video model (Section 4 / A.1: 2D -> 3D, new zero-initialised temporal layers), the
interpolation model grown from the base video model (A.1 (6): zero-initialised input channels for
the known frames), and the checks that an ``--init`` model fits -- made before any weights load.
"""

from __future__ import annotations

from dataclasses import fields, replace

from pyoco_lab import edm, models
from pyoco_lab.models.inflate import add_cond_channels, cond_extension_compatible
from pyoco_lab.training.config import TrainConfig, text_specs

# Conditioning input channels of each cascade stage: none for the base model; the known frames
# (zeros between them, A.1 (3)) for interpolation; the upsampled low-resolution clip for SR.
STAGE_COND_CHANNELS = {"base": 0, "interpolation": 3, "sr": 3}


def unet_config(config: TrainConfig, num_classes: int) -> models.UNetConfig:
    """The ``models.CONFIGS`` entry the config names, at its resolution, phase, stage and conditioning."""
    if config.model not in models.CONFIGS:
        raise ValueError(f"unknown model {config.model!r}; choose one of {', '.join(models.CONFIGS)}")
    # Attention stays at the config's levels at a larger input size (models.at_resolution).
    unet = models.at_resolution(models.CONFIGS[config.model], config.resolution)
    check_stage_fits(config)
    wanted = {
        "num_classes": num_classes if config.class_conditional else 0,
        "video": config.phase == "video",
        "grad_checkpointing": config.grad_checkpointing,
        "cond_channels": STAGE_COND_CHANNELS[config.stage],
    }
    specs, drop_probs = text_specs(config)
    if specs:  # cross-attention to text in the spatial attention blocks only (A.1 (5))
        wanted["text_dims"] = tuple(models.text_dim(spec) for spec in specs)
        wanted["text_drop_probs"] = drop_probs
        wanted["cross_attention_resolutions"] = unet.cross_attention_resolutions or unet.attention_resolutions
    names = {f.name for f in fields(unet)}
    return replace(unet, **{k: v for k, v in wanted.items() if k in names})


def check_stage_fits(config: TrainConfig) -> None:
    """A named config made for conditioning frames (t2v-interp, t2v-sr*, tiny-sr) is no base model."""
    unet = models.CONFIGS.get(config.model)
    if unet is not None and unet.cond_channels and config.stage == "base":
        raise ValueError(
            f"model {config.model!r} takes conditioning frames (an interpolation or SR model); pass "
            "--stage interpolation or --stage sr, or a base model (the --stage sets the channels)"
        )


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


def interpolation_from_base(
    base_denoiser: edm.Denoiser, config: TrainConfig, num_classes: int
) -> edm.Denoiser:
    """The interpolation denoiser initialised from a base video denoiser (A.1 (6)): every weight
    copied, the input convolution's new channels for the known frames zero, so it starts as the base."""
    net = add_cond_channels(base_denoiser.net, STAGE_COND_CHANNELS[config.stage])
    ours = edm.Denoiser(net, sigma_data=base_denoiser.sigma_data).state_dict()
    denoiser = build_network(config, num_classes=num_classes)  # this run's exact config
    theirs = denoiser.state_dict()
    if ours.keys() != theirs.keys() or any(ours[k].shape != theirs[k].shape for k in ours):
        raise ValueError(
            "the --init base model does not fit the interpolation config "
            f"(model={config.model!r}, resolution={config.resolution}); "
            "pass the same --model/--resolution/--class-conditional/--text-encoders as the base run"
        )
    denoiser.load_state_dict(ours)
    denoiser.sigma_data = base_denoiser.sigma_data
    return denoiser.to(next(base_denoiser.parameters()).device)


def check_init_fits(image_config: TrainConfig, config: TrainConfig, init) -> None:
    """Fail before any work when the --init run cannot initialise this config: an image run of the
    same stage is inflated (base, SR) or, for an image run, continued; an interpolation run starts from a
    base video run (A.1 (6))."""
    if config.stage == "interpolation":
        if (image_config.phase, image_config.stage) != ("video", "base"):
            raise ValueError(
                f"--init {init} is {'an' if image_config.phase == 'image' else 'a'} {image_config.phase} "
                f"run of stage {image_config.stage!r}; an "
                "interpolation run starts from a base video run (A.1 (6)): pass one (`--phase video`)"
            )
    elif image_config.phase != "image":
        raise ValueError(f"--init {init} is a {image_config.phase} run; pass an image-phase run")
    elif image_config.stage != config.stage:
        raise ValueError(
            f"--init {init} is an image run of stage {image_config.stage!r}; this {config.stage!r} "
            f"{config.phase} run starts from an image model of its own stage: pre-train one with --phase "
            f"image --stage {config.stage}"
        )
    for name in ("model", "resolution"):
        ours, theirs = getattr(config, name), getattr(image_config, name)
        if ours != theirs:
            raise ValueError(
                f"the --init run does not fit this config ({name} {theirs!r} there, {ours!r} "
                f"here); pass --{name} {theirs} (or train the --init run with --{name} {ours})"
            )


def check_architecture_fits(
    image_config: TrainConfig, image_num_classes: int, config: TrainConfig, num_classes: int
) -> None:
    """Compare the --init and new architectures on the meta device (cheap, before any weights)."""
    image = unet_config(image_config, image_num_classes)
    try:
        if config.stage == "interpolation":
            cond_extension_compatible(image, unet_config(config, num_classes))
            return
        models.image_state_dict_compatible(image, unet_config(config, num_classes))
    except ValueError as error:
        raise ValueError(f"the --init run does not fit this config: {error}") from None
