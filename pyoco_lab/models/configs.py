"""Named U-Net configurations: the paper's Tables G-M, and small CPU-scale members of the same family.

Counts are taken on the meta device (:func:`count_parameters`), so even the 1B models cost no memory.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from pyoco_lab.models.config import UNetConfig
from pyoco_lab.models.unet import VideoUNet

# eDiff-I's encoders (A.1 (8)): T5-XXL token features are 4096 wide, CLIP ViT-L/14 text tokens 768.
T5_XXL_DIM = 4096
CLIP_L_DIM = 768
TEXT_DIMS = (T5_XXL_DIM, CLIP_L_DIM)
TEXT_DROP = (0.25, 0.2)  # Table F: T5 and CLIP embedding dropout rates

_UCF = dict(
    resolution=64,
    dropout=0.1,
    num_res_blocks=2,
    attention_resolutions=(32, 16, 8),
    temporal_attention_resolutions=(32, 16, 8),
    head_channels=64,
)
_T2V = dict(
    resolution=64,
    dropout=0.0,
    model_channels=256,
    channel_mult=(1, 2, 4, 4),
    num_res_blocks=3,
    attention_resolutions=(32, 16, 8),
    cross_attention_resolutions=(32, 16, 8),
    temporal_attention_resolutions=(32, 16, 8),
    text_dims=TEXT_DIMS,
    text_drop_probs=TEXT_DROP,
)


def _lab(channels: int, mult: tuple[int, ...]) -> dict:
    return dict(
        resolution=32,
        model_channels=channels,
        channel_mult=mult,
        num_res_blocks=1,
        dropout=0.1,
        attention_resolutions=(8,),
        temporal_attention_resolutions=(16, 8),
        head_channels=32,
    )


CONFIGS: dict[str, UNetConfig] = {
    # --- the paper (Appendix A.4) ----------------------------------------------------------
    "ucf-small": UNetConfig(
        name="ucf-small",
        model_channels=128,
        channel_mult=(1, 2, 2, 3),
        paper_params=69e6,
        paper_table="G",
        **_UCF,
    ),
    "ucf-medium": UNetConfig(
        name="ucf-medium",
        model_channels=128,
        channel_mult=(1, 2, 3, 4),
        paper_params=112e6,
        paper_table="H",
        **_UCF,
    ),
    "ucf-large": UNetConfig(
        name="ucf-large",
        model_channels=192,
        channel_mult=(1, 2, 3, 4),
        paper_params=253e6,
        paper_table="I",
        **_UCF,
    ),
    "t2v-base": UNetConfig(name="t2v-base", paper_params=1.08e9, paper_table="J", **_T2V),
    # A.1 (3): the interpolation model is the base model plus 3 channels for the known frames.
    "t2v-interp": UNetConfig(
        name="t2v-interp", cond_channels=3, paper_params=1.08e9, paper_table="K", **_T2V
    ),
    "t2v-sr256": UNetConfig(
        name="t2v-sr256",
        architecture="efficient",
        resolution=256,
        cond_channels=3,
        model_channels=128,
        channel_mult=(1, 2, 4, 8),
        block_mult=(1, 2, 4, 4),
        num_res_blocks=2,
        attention_resolutions=(32,),
        cross_attention_resolutions=(32,),
        temporal_attention_resolutions=(),
        temporal_conv=True,
        text_dims=TEXT_DIMS,
        text_drop_probs=TEXT_DROP,
        paper_params=300e6,
        paper_table="L",
    ),
    # Patch-based: trained on 256x256 crops of 1024 frames; fully convolutional + cross-attention
    # only, so it runs on whole 1024x1024 frames at sampling time.
    "t2v-sr1024": UNetConfig(
        name="t2v-sr1024",
        architecture="efficient",
        resolution=256,
        cond_channels=3,
        model_channels=128,
        channel_mult=(1, 2, 4, 4),
        block_mult=(1, 2, 4, 4),
        num_res_blocks=2,
        attention_resolutions=(),
        cross_attention_resolutions=(32,),
        temporal_attention_resolutions=(),
        temporal_conv=True,
        text_dims=TEXT_DIMS,
        text_drop_probs=TEXT_DROP,
        paper_params=170e6,
        paper_table="M",
    ),
    # --- CPU scale: the same family (ADM blocks, attention at the two lowest resolutions) ------
    # "tiny" drives the `quick` training preset; lab-s/m/l form the model-size axis at CPU scale.
    "tiny": UNetConfig(name="tiny", **_lab(32, (1, 2, 2))),
    "lab-s": UNetConfig(name="lab-s", **_lab(24, (1, 2, 2))),
    "lab-m": UNetConfig(name="lab-m", **_lab(32, (1, 2, 3))),
    "lab-l": UNetConfig(name="lab-l", **_lab(48, (1, 2, 3))),
    # CPU-scale super-resolution (the family of Tables L-M): an efficient U-Net on 32 px frames
    # conditioned on 8 px ones upsampled (--stage sr; cascade.SR_FACTOR = 4), 3x1x1 temporal
    # convolutions, self-attention at the lowest level only. The interpolation model needs no
    # config of its own: it is the base model's (--model tiny --stage interpolation, A.1 (6)).
    "tiny-sr": UNetConfig(
        name="tiny-sr",
        architecture="efficient",
        resolution=32,
        cond_channels=3,
        model_channels=32,
        channel_mult=(1, 2, 2),
        block_mult=(1, 1, 2),
        num_res_blocks=1,
        dropout=0.1,
        attention_resolutions=(8,),
        temporal_attention_resolutions=(),
        temporal_conv=True,
        head_channels=32,
    ),
}


def count_parameters(config: UNetConfig) -> int:
    """Number of parameters of ``VideoUNet(config)``, built on the meta device (no weights allocated)."""
    with torch.device("meta"):
        net = VideoUNet(config)
    return sum(p.numel() for p in net.parameters())


def at_resolution(config: UNetConfig, resolution: int) -> UNetConfig:
    """``config`` built for ``resolution`` px inputs, its attention at the same U-Net levels.

    The ``*_resolutions`` fields list feature-map sizes for the config's own ``resolution``. A larger
    input scales them with it: lab-l at 64 px (the standard preset) keeps its spatial attention at the
    lowest level (16 px there, 8 px at 32 px), where the listed (8,) would match no level at all and
    leave a smaller model than documented. A smaller input keeps them as listed: the 16 px models of
    cpu-long and the shipped ``lab-tiny-16`` were trained so, and their attention still finds a level.
    """
    factor = max(1, resolution // config.resolution) if resolution % config.resolution == 0 else 1
    scaled = {
        name: tuple(r * factor for r in getattr(config, name))
        for name in ("attention_resolutions", "cross_attention_resolutions", "temporal_attention_resolutions")
    }
    return replace(config, resolution=resolution, **scaled)


def get_config(name: str, **overrides) -> UNetConfig:
    """A named config, optionally with fields replaced; ValueError lists the names on a typo."""
    if name not in CONFIGS:
        raise ValueError(f"unknown model config {name!r}; choose one of {', '.join(CONFIGS)}")
    return replace(CONFIGS[name], **overrides)
