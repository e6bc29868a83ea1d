"""The U-Net's building blocks (Appendix A.1): residual, spatial and temporal layers over frames in the batch.

Every feature map is ``(batch * frames, C, H, W)``: a 3x3 convolution is the 1x3x3 convolution of
A.1 (1) and GroupNorm and spatial attention see per-frame statistics (A.1 (5)). Temporal layers alone
reshape (:class:`Context` says how many frames of each sample are a video, A.1 (7)) to mix information
across frames; their output projections start at zero, so an inflated model equals the image model.
:mod:`pyoco_lab.models.unet` assembles them into :class:`~pyoco_lab.models.unet.VideoUNet`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

# ----------------------------------------------------------------------------------------------
# Small helpers.


def group_norm(channels: int) -> nn.GroupNorm:
    # ADM/EDM use 32 groups; tiny CPU models with fewer channels fall back to a divisor.
    groups = math.gcd(32, channels)
    return nn.GroupNorm(groups, channels, eps=1e-6 if groups < 32 else 1e-5)


def zero_init(module: nn.Module) -> nn.Module:
    """Zero a layer's weights: residual branches then start as the identity (ADM; A.1 (2))."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer sinusoidal features of `positions` (any shape) -> (..., dim), in float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=positions.device) / half)
    angles = positions.float()[..., None] * freqs
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return F.pad(emb, (0, dim % 2))


@dataclass
class Context:
    """What every layer may need besides the feature map, shared by one forward pass."""

    emb: torch.Tensor  # (B*F, E) noise (+ class) embedding, repeated per frame
    text: torch.Tensor | None  # (B, L, context_channels) projected tokens; (B*F, L, ...) per frame
    text_mask: torch.Tensor | None  # (B, L) (or (B*F, L)) bool, True = attend
    batch: int  # B
    frames: int  # F (1 for an image batch)
    video_frames: int  # how many leading frames are a video (0 = an image batch: temporal layers idle)
    text_per_frame: bool = False  # text is (B*F, L, ...): every frame attends to its own tokens

    @property
    def text_groups(self) -> tuple[int, int]:
        """(text rows, frames per row): queries of each row's frames attend to that row's tokens."""
        return (self.batch * self.frames, 1) if self.text_per_frame else (self.batch, self.frames)


# ----------------------------------------------------------------------------------------------
# Spatial layers: act on each frame independently (frames live in the batch axis).


class ResBlock(nn.Module):
    """ADM residual block: GN-SiLU-conv, scale-shift by the noise embedding, GN-SiLU-dropout-conv(0)."""

    def __init__(self, cin, cout, emb_channels, *, dropout=0.0, scale_shift=True, updown=None):
        super().__init__()
        self.updown = updown  # None, "down" or "up" (ADM's resblock_updown)
        self.scale_shift = scale_shift
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_channels, 2 * cout if scale_shift else cout)
        self.norm2 = group_norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def _resample(self, x):
        if self.updown == "down":
            return F.avg_pool2d(x, 2)
        if self.updown == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x, c: Context):
        h = F.silu(self.norm1(x))
        h = self.conv1(self._resample(h))
        x = self._resample(x)
        e = self.emb(F.silu(c.emb))[:, :, None, None].to(h.dtype)
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class EfficientResBlock(nn.Module):
    """Imagen's efficient-U-Net residual block: the ADM block with a 1x1 skip convolution always."""

    def __init__(self, cin, cout, emb_channels, *, dropout=0.0, scale_shift=True):
        super().__init__()
        self.block = ResBlock(cin, cout, emb_channels, dropout=dropout, scale_shift=scale_shift)
        if cin == cout:  # Imagen always learns the skip projection
            self.block.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x, c: Context):
        return self.block(x, c)


class Downsample(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)

    def forward(self, x, c: Context):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x, c: Context):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SpatialSelfAttention(nn.Module):
    """Multi-head self-attention over the H*W positions of each frame (ADM's attention block)."""

    def __init__(self, channels, head_channels):
        super().__init__()
        self.heads = max(channels // head_channels, 1)
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x, c: Context):
        h, w = x.shape[-2:]
        q, k, v = rearrange(self.qkv(self.norm(x)), "n (t g d) h w -> t n g (h w) d", t=3, g=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(rearrange(out, "n g (h w) d -> n (g d) h w", h=h, w=w))


def _attend_text(q, text, kv: nn.Linear, mask, heads: int):
    """SDPA from queries (B, g, N, d) to the projected text tokens; None mask = all tokens real."""
    k, v = rearrange(kv(text).to(q.dtype), "b l (t g d) -> t b g l d", t=2, g=heads)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None, None, :])


class SpatialCrossAttention(nn.Module):
    """Attention from each pixel to the text tokens (A.1 (5): text enters only the spatial blocks).

    Queries of all frames of a sample attend to that sample's tokens, so per-sample text is never
    repeated per frame: (B*F, HW) queries are regrouped as (B, F*HW) before SDPA. Per-frame text
    (joint batches: each appended image has its own caption) keeps one row per frame instead.
    """

    def __init__(self, channels, context_channels, head_channels):
        super().__init__()
        self.heads = max(channels // head_channels, 1)
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.kv = nn.Linear(context_channels, 2 * channels)
        self.proj = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x, c: Context):
        h, w = x.shape[-2:]
        rows, frames = c.text_groups
        q = rearrange(self.q(self.norm(x)), "(b f) (g d) h w -> b g (f h w) d", b=rows, g=self.heads)
        out = _attend_text(q, c.text, self.kv, c.text_mask, self.heads)
        out = rearrange(out, "b g (f h w) d -> (b f) (g d) h w", f=frames, h=h, w=w)
        return x + self.proj(out)


class SpatialTransformer(nn.Module):
    """Text-conditioned spatial attention: self-attention, cross-attention to text, GEGLU feed-forward.

    The paper only says eDiff-I's spatial attention is reused; we use the standard text-to-image
    transformer block (latent diffusion / Stable Diffusion): GroupNorm, 1x1 in-projection, three
    pre-LayerNorm residual sub-layers over the H*W tokens, zero-initialised 1x1 out-projection.
    """

    def __init__(self, channels, context_channels, head_channels, ff_mult=4):
        super().__init__()
        self.heads = max(channels // head_channels, 1)
        self.norm = group_norm(channels)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(channels) for _ in range(3))
        self.qkv = nn.Linear(channels, 3 * channels, bias=False)
        self.self_out = nn.Linear(channels, channels)
        self.q = nn.Linear(channels, channels, bias=False)
        self.kv = nn.Linear(context_channels, 2 * channels, bias=False)
        self.cross_out = nn.Linear(channels, channels)
        self.ff_in = nn.Linear(channels, 2 * ff_mult * channels)  # GEGLU: value and gate
        self.ff_out = nn.Linear(ff_mult * channels, channels)
        self.proj_out = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x, c: Context):
        h, w = x.shape[-2:]
        t = rearrange(self.proj_in(self.norm(x)), "n ch h w -> n (h w) ch")
        q, k, v = rearrange(self.qkv(self.norm1(t)), "n l (s g d) -> s n g l d", s=3, g=self.heads)
        t = t + self.self_out(rearrange(F.scaled_dot_product_attention(q, k, v), "n g l d -> n l (g d)"))
        rows, frames = c.text_groups
        q = rearrange(self.q(self.norm2(t)), "(b f) l (g d) -> b g (f l) d", b=rows, g=self.heads)
        out = _attend_text(q, c.text, self.kv, c.text_mask, self.heads)
        t = t + self.cross_out(rearrange(out, "b g (f l) d -> (b f) l (g d)", f=frames))
        value, gate = self.ff_in(self.norm3(t)).chunk(2, dim=-1)
        t = t + self.ff_out(value * F.gelu(gate))
        return x + self.proj_out(rearrange(t, "n (h w) ch -> n ch h w", h=h, w=w))


# ----------------------------------------------------------------------------------------------
# Temporal layers: mix across the video frames only; identity at initialisation.


def _video_part(x, c: Context):
    """(B*F, C, H, W) -> video frames (B, n, C, H, W) and the trailing image frames (B, F-n, C, H, W)."""
    x = rearrange(x, "(b f) ch h w -> b f ch h w", b=c.batch)
    return x[:, : c.video_frames], x[:, c.video_frames :]


def _join(video, images):
    return rearrange(torch.cat([video, images], dim=1), "b f ch h w -> (b f) ch h w")


class TemporalAttention(nn.Module):
    """Self-attention across frames at each pixel (A.1 (2)): spatial positions go to the batch axis.

    The frame index enters through sinusoidal position features projected into the channels
    (without them attention would be permutation-invariant in time). The output projection is
    zero-initialised, so an inflated model starts as the image model.
    """

    def __init__(self, channels, head_channels):
        super().__init__()
        self.heads = max(channels // head_channels, 1)
        self.channels = channels
        self.norm = group_norm(channels)
        self.pos = nn.Linear(channels, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = zero_init(nn.Linear(channels, channels))

    def forward(self, x, c: Context):
        if c.video_frames < 2:  # an image batch or a single frame: nothing to mix
            return x
        video, images = _video_part(x, c)
        b, n, _, hh, ww = video.shape
        # GroupNorm per frame (A.1 (5)) keeps the image statistics; then pixels become the batch.
        h = self.norm(rearrange(video, "b n ch h w -> (b n) ch h w"))
        h = rearrange(h, "(b n) ch h w -> (b h w) n ch", b=b)
        pos = sinusoidal_embedding(torch.arange(n, device=x.device), self.channels)
        h = h + self.pos(pos.to(h.dtype))
        q, k, v = rearrange(self.qkv(h), "m n (t g d) -> t m g n d", t=3, g=self.heads)
        out = rearrange(F.scaled_dot_product_attention(q, k, v), "m g n d -> m n (g d)")
        out = rearrange(self.proj(out), "(b h w) n ch -> b n ch h w", b=b, h=hh, w=ww)
        return _join(video + out, images)


class TemporalConv(nn.Module):
    """A.1 (4): a 3x1x1 convolution across frames as a zero-initialised residual branch."""

    def __init__(self, channels):
        super().__init__()
        self.norm = group_norm(channels)
        self.conv = zero_init(nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)))

    def forward(self, x, c: Context):
        if c.video_frames < 2:
            return x
        video, images = _video_part(x, c)
        b = video.shape[0]
        h = F.silu(self.norm(rearrange(video, "b n ch h w -> (b n) ch h w")))
        h = self.conv(rearrange(h, "(b n) ch h w -> b ch n h w", b=b))
        return _join(video + rearrange(h, "b ch n h w -> b n ch h w"), images)
