"""PYoCo's noise priors in Hugging Face diffusers pipelines (the optional extra ``.[diffusers]``).

Three things a diffusers user needs, each a small function (docs/diffusers.md has a worked example):

1. :func:`prior_latents` / :func:`pipeline_latents`: the initial noise drawn from a prior in diffusers' video
   layout ``(B, C, F, H, W)`` (the lab's is ``(B, F, C, H, W)``), with the pipeline's device *and dtype*
   (video pipelines move ``latents=`` to their device but do not cast them) at unit variance (the pipeline
   multiplies by ``scheduler.init_noise_sigma`` itself).
2. :func:`prior_step_noise`: ancestral / SDE / DDPM / DDIM(eta > 0) schedulers draw *fresh* i.i.d. noise at
   every ``step``; only the first latents would follow the prior. Inside this context manager the fresh
   noise a scheduler draws for a 5-D latent comes from the prior too (the scheduler module's ``randn_tensor``
   is swapped for the prior's sampler while the block runs, and restored after).
3. :class:`DiffusersVideoDenoiser`: a diffusers ε-prediction video U-Net (e.g. ``UNet3DConditionModel``) seen
   as the lab's EDM denoiser ``D(x; σ)`` on ``(B, F, C, H, W)``, so that ``edm.sample`` (any sampler, prior)
   and ``edm.invert`` (real frames -> noise maps, Section 4) run on it. For a VP model x_t = √ᾱ x0 + √(1−ᾱ) ε,
   the EDM variable is x = x_t / √ᾱ with σ = √((1−ᾱ)/ᾱ), and D(x; σ) = x − σ ε̂(x_t, t(σ)), t(σ) interpolated
   in log σ over the scheduler's table (as k-diffusion's discrete-DDPM wrappers do).

k-diffusion users need none of this: its samplers take ``noise_sampler=`` (a callable ``(sigma, sigma_next)
-> noise``), so ``noise_sampler=lambda s, s_next: prior.sample(x.shape)`` passes the prior through.
"""

from __future__ import annotations

import contextlib
import sys

import torch
from einops import rearrange

from pyoco_lab.noise import NoisePrior


def prior_latents(
    prior: NoisePrior,
    batch_size: int,
    channels: int,
    num_frames: int,
    height: int,
    width: int,
    *,
    generator: torch.Generator | None = None,
    device=None,
    dtype=None,
) -> torch.Tensor:
    """Unit-variance noise of ``prior`` (eq. 3 / eq. 4 across frames) shaped (B, C, F, H, W) for diffusers."""
    eps = prior.sample((batch_size, num_frames, channels, height, width), generator=generator)
    return rearrange(eps, "b f c h w -> b c f h w").to(device=device, dtype=dtype)


def pipeline_latents(
    pipe, prior: NoisePrior, *, num_frames: int, height: int, width: int, batch_size: int = 1, generator=None
) -> torch.Tensor:
    """:func:`prior_latents` for ``pipe``: its U-Net's latent channels, its VAE's downscaling (``height`` and
    ``width`` are in pixels, as the pipeline takes them), its device and its U-Net's dtype."""
    scale = int(getattr(pipe, "vae_scale_factor", 8))
    if height % scale or width % scale:
        raise ValueError(
            f"height and width must be multiples of the VAE scale factor {scale}, got {height}x{width}"
        )
    return prior_latents(
        prior,
        batch_size,
        pipe.unet.config.in_channels,
        num_frames,
        height // scale,
        width // scale,
        generator=generator,
        device=pipe.device,
        dtype=pipe.unet.dtype,
    )


@contextlib.contextmanager
def prior_step_noise(
    scheduler, prior: NoisePrior, generator: torch.Generator | None = None, *, num_frames: int | None = None
):
    """Inside the block, the fresh noise ``scheduler.step`` draws for video latents follows ``prior``.

    Works with every scheduler that draws its per-step noise through diffusers' ``randn_tensor``
    (ancestral Euler, DDPM, DDIM with eta > 0, DPM-Solver SDE variants, ...). Latents shaped (B, C, F, H, W)
    are recognised by their rank; pipelines that fold the frames into the batch for the step (``(B·F, C, H,
    W)``, as ``TextToVideoSDPipeline`` does) need ``num_frames``. Noise of any other shape is drawn as before.
    ``generator`` seeds the prior's draws (default: the CPU generator the scheduler passes, if any).
    """
    module = sys.modules[type(scheduler).__module__]
    original = getattr(module, "randn_tensor", None)
    if original is None:
        raise ValueError(
            f"{type(scheduler).__name__} does not draw noise through randn_tensor; it may be deterministic "
            "(then only the initial latents need the prior: pipeline_latents)"
        )

    def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None, **kwargs):
        shape = tuple(shape)
        folded = num_frames is not None and len(shape) == 4 and shape[0] % num_frames == 0
        if len(shape) != 5 and not folded:
            return original(shape, generator=generator, device=device, dtype=dtype, layout=layout, **kwargs)
        g = seed if seed is not None else generator if isinstance(generator, torch.Generator) else None
        if g is not None and g.device.type != "cpu":
            g = None  # the lab's priors draw on CPU (the same numbers on every machine)
        if folded:  # (B*F, C, H, W) with frames consecutive within each video
            b, c, f, h, w = shape[0] // num_frames, shape[1], num_frames, shape[2], shape[3]
            latents = prior_latents(prior, b, c, f, h, w, generator=g, device=device, dtype=dtype)
            return rearrange(latents, "b c f h w -> (b f) c h w")
        b, c, f, h, w = shape
        return prior_latents(prior, b, c, f, h, w, generator=g, device=device, dtype=dtype)

    seed = generator
    module.randn_tensor = randn_tensor
    try:
        yield
    finally:
        module.randn_tensor = original


class DiffusersVideoDenoiser(torch.nn.Module):
    """A diffusers ε-prediction video U-Net as an EDM denoiser ``D(x; σ)`` on (B, F, C, H, W) (module doc).

    ``unet(sample (B, C, F, H, W), timestep, encoder_hidden_states=...)`` must return ε̂ (``.sample``);
    ``alphas_cumprod`` is the scheduler's ᾱ table (``scheduler.alphas_cumprod``). ``encoder_hidden_states``
    (B or 1, tokens, dim) is the fixed text conditioning, repeated over the batch. ``sigma_min``/``sigma_max``
    are the model's range, to pass on to ``edm.sample`` / ``edm.invert``.
    """

    def __init__(self, unet, alphas_cumprod: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None):
        super().__init__()
        if getattr(unet.config, "prediction_type", "epsilon") not in (None, "epsilon"):
            raise ValueError("DiffusersVideoDenoiser takes epsilon-prediction U-Nets")
        self.unet = unet
        sigmas = ((1 - alphas_cumprod.double()) / alphas_cumprod.double()).sqrt()
        self.register_buffer("log_sigmas", sigmas.log(), persistent=False)
        self.encoder_hidden_states = encoder_hidden_states
        self.sigma_min, self.sigma_max = float(sigmas[0]), float(sigmas[-1])

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """Fractional timestep t(σ): linear interpolation of t in log σ over the scheduler's table."""
        log_sigma = sigma.double().clamp(self.sigma_min, self.sigma_max).log()
        index = torch.searchsorted(self.log_sigmas, log_sigma).clamp(1, len(self.log_sigmas) - 1)
        low, high = self.log_sigmas[index - 1], self.log_sigmas[index]
        weight = ((log_sigma - low) / (high - low)).clamp(0, 1)
        return (index - 1).double() + weight

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
        scale = (1 + sigma**2).rsqrt()  # sqrt(alpha_bar): x_t = sqrt(alpha_bar) * x
        dtype = self.unet.dtype
        x_t = rearrange(x * scale.view(-1, 1, 1, 1, 1).to(x.dtype), "b f c h w -> b c f h w").to(dtype)
        context = self.encoder_hidden_states
        if context is not None:
            context = context.to(device=x.device, dtype=dtype).expand(x.shape[0], *context.shape[1:])
        eps = self.unet(x_t, self.timestep(sigma).to(dtype), encoder_hidden_states=context).sample
        eps = rearrange(eps.to(x.dtype), "b c f h w -> b f c h w")
        return x - sigma.view(-1, 1, 1, 1, 1).to(x.dtype) * eps


def karras_range(denoiser: DiffusersVideoDenoiser) -> dict[str, float]:
    """``sigma_min``/``sigma_max`` keyword arguments of ``edm.sample`` / ``edm.invert`` for this model."""
    return {"sigma_min": denoiser.sigma_min, "sigma_max": denoiser.sigma_max}
