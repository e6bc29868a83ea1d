"""`UNetConfig`: every architectural choice of the video U-Net as data (Appendix A.4, Tables G-M).

The named configurations themselves live in :mod:`pyoco_lab.models.configs`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UNetConfig:
    """One U-Net of the paper's cascade, usable as an image model (``video=False``) or a video model.

    Resolutions listed in the ``*_resolutions`` fields are feature-map sizes at which a layer is
    added, exactly as the paper's tables list them; they are matched against ``resolution``
    halved once per level.
    """

    name: str = "custom"
    architecture: str = "adm"  # "adm" (Tables G-K) or "efficient" (Imagen's efficient U-Net, Tables L-M)
    resolution: int = 64  # input height = width the model is built for (training size; patch for SR-1024)
    in_channels: int = 3
    out_channels: int = 3
    cond_channels: int = 0  # extra input channels concatenated to x (interpolation / SR conditioning)
    model_channels: int = 128  # "Number of channels"
    channel_mult: tuple[int, ...] = (1, 2, 2, 3)  # "Channel multiplier"
    num_res_blocks: int = 2  # "Number of residual blocks"
    block_mult: tuple[int, ...] | None = (
        None  # efficient U-Net: residual blocks per level = num_res_blocks * m
    )
    attention_resolutions: tuple[int, ...] = (32, 16, 8)  # spatial self-attention
    cross_attention_resolutions: tuple[int, ...] = ()  # spatial cross-attention to text (needs text_dims)
    temporal_attention_resolutions: tuple[int, ...] = (32, 16, 8)
    temporal_conv: bool = False  # A.1 (4): a 3x1x1 convolution at the end of each efficient block
    head_channels: int = 64  # "Number of channels in attention heads"
    dropout: float = 0.0
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True  # ADM: down/upsample with residual blocks (as ADM's ImageNet-64 model)
    num_classes: int = 0  # 0 = no class conditioning; label -1 selects the learned null class
    text_dims: tuple[
        int, ...
    ] = ()  # feature size of each text-embedding sequence, e.g. (4096, 768) T5 + CLIP
    text_drop_probs: tuple[float, ...] = ()  # per-sequence training dropout (Table F: T5 0.25, CLIP 0.2)
    context_channels: int = 1024  # every text sequence is projected to this width before cross-attention
    video: bool = True  # False builds the image model: no temporal layers at all
    grad_checkpointing: bool = False
    max_frames: int = 128  # longest video the frame-position encoding is laid out for
    paper_params: float | None = None  # the parameter count the paper states, for the summary table
    paper_table: str = ""

    def __post_init__(self):
        if self.architecture not in ("adm", "efficient"):
            raise ValueError(f"architecture must be 'adm' or 'efficient', got {self.architecture!r}")
        if self.resolution % (2 ** (len(self.channel_mult) - 1)):
            raise ValueError(
                f"resolution {self.resolution} is not divisible by 2**{len(self.channel_mult) - 1}; "
                "pick a resolution that halves cleanly at every level of channel_mult"
            )
        if self.block_mult is not None and len(self.block_mult) != len(self.channel_mult):
            raise ValueError("block_mult must have one entry per channel_mult level")
        if self.text_drop_probs and len(self.text_drop_probs) != len(self.text_dims):
            raise ValueError("text_drop_probs needs one probability per entry of text_dims")
        if self.cross_attention_resolutions and not self.text_dims:
            # Cross-attention without any text to attend to is meaningless: say so instead of building it.
            raise ValueError(
                "cross_attention_resolutions needs text_dims (the width of each text embedding); "
                "set text_dims=(...) or cross_attention_resolutions=()"
            )

    def level_resolutions(self) -> list[int]:
        return [self.resolution // 2**i for i in range(len(self.channel_mult))]

    def blocks_at(self, level: int) -> int:
        mult = 1 if self.block_mult is None else self.block_mult[level]
        return self.num_res_blocks * mult
