"""The priors inside a real diffusers pipeline (diffusers from PyPI, a tiny randomly initialised video U-Net
built from a config: nothing is downloaded). What the pipeline actually receives -- its initial latents and
the fresh noise its ancestral scheduler injects at every step -- must have the prior's frame correlation."""

from __future__ import annotations

import math

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from pyoco_lab import edm, noise  # noqa: E402
from pyoco_lab.integrations import diffusers as bridge  # noqa: E402

FRAMES, BATCH = 4, 8


def _unet():
    torch.manual_seed(0)
    return diffusers.UNet3DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        cross_attention_dim=8,
        attention_head_dim=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        sample_size=8,
        in_channels=4,
        out_channels=4,
        norm_num_groups=4,
    ).eval()


def _scheduler():
    return diffusers.EulerAncestralDiscreteScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )


def _lag_correlation(latents: torch.Tensor) -> torch.Tensor:
    """Measured frame correlation (F, F) of (B, C, F, H, W) noise (zero-mean, as every prior)."""
    return noise.empirical_frame_correlation(latents.transpose(1, 2))


@pytest.mark.parametrize("prior", [noise.NoisePrior("mixed", 1.0), noise.NoisePrior("progressive", 2.0)])
def test_pipeline_receives_prior_noise_initially_and_at_every_ancestral_step(prior, monkeypatch):
    pipe = diffusers.TextToVideoSDPipeline(
        vae=None, text_encoder=None, tokenizer=None, unet=_unet(), scheduler=_scheduler()
    )
    pipe.set_progress_bar_config(disable=True)
    seen_by_unet, injected = [], []
    pipe.unet.register_forward_pre_hook(lambda module, args: seen_by_unet.append(args[0].detach().clone()))
    drawn = bridge.prior_latents

    def spy(*args, **kwargs):
        out = drawn(*args, **kwargs)
        injected.append(out.clone())
        return out

    latents = bridge.pipeline_latents(
        pipe,
        prior,
        num_frames=FRAMES,
        height=64,
        width=64,
        batch_size=BATCH,
        generator=torch.Generator().manual_seed(0),
    )
    assert latents.shape == (BATCH, 4, FRAMES, 8, 8) and latents.dtype == pipe.unet.dtype
    monkeypatch.setattr(bridge, "prior_latents", spy)
    # TextToVideoSDPipeline folds the frames into the batch for the scheduler step: pass num_frames
    with bridge.prior_step_noise(pipe.scheduler, prior, torch.Generator().manual_seed(1), num_frames=FRAMES):
        pipe(
            prompt_embeds=torch.zeros(BATCH, 4, 8),
            guidance_scale=1.0,
            num_frames=FRAMES,
            height=64,
            width=64,
            num_inference_steps=3,
            latents=latents,
            output_type="latent",
        )
    module = __import__(type(pipe.scheduler).__module__, fromlist=["randn_tensor"])
    assert module.randn_tensor.__module__.startswith("diffusers")  # restored after the block

    closed = noise.frame_correlation(prior.kind, FRAMES, prior.alpha)
    # every pair of frames pools B * C * H * W = 2048 values: standard error of a correlation <= 1/sqrt(2048)
    tolerance = 5 / math.sqrt(BATCH * 4 * 8 * 8)
    first = seen_by_unet[
        0
    ]  # what the U-Net receives at step 1: latents * init_noise_sigma, scaled for the model
    assert torch.allclose(_lag_correlation(first), closed, atol=tolerance)
    assert len(injected) >= 2  # the ancestral scheduler drew fresh noise at its steps, from the prior
    for noise_of_step in injected:
        assert noise_of_step.shape == latents.shape
        assert torch.allclose(_lag_correlation(noise_of_step), closed, atol=tolerance)
    iid = noise.frame_correlation("iid", FRAMES)
    assert not torch.allclose(_lag_correlation(injected[-1]), iid, atol=tolerance)  # not i.i.d. any more


def test_a_diffusers_video_unet_is_sampled_and_inverted_by_the_labs_edm_functions():
    scheduler = _scheduler()
    denoiser = bridge.DiffusersVideoDenoiser(
        _unet(), scheduler.alphas_cumprod, encoder_hidden_states=torch.zeros(1, 4, 8)
    )
    # t(sigma) retraces the scheduler's table: sigma of timestep k maps back to k
    table = ((1 - scheduler.alphas_cumprod) / scheduler.alphas_cumprod).sqrt()
    for k in (0, 10, 500, 999):
        assert float(denoiser.timestep(table[k : k + 1].double())) == pytest.approx(k, abs=1e-6)
    sigmas = bridge.karras_range(denoiser)
    assert sigmas["sigma_min"] < 0.1 < 10 < sigmas["sigma_max"]
    with torch.no_grad():
        prior = noise.NoisePrior("progressive", 2.0)
        x0 = edm.sample(denoiser, prior.sample((2, FRAMES, 4, 8, 8)), sampler="heun", num_steps=3, **sigmas)
        assert x0.shape == (2, FRAMES, 4, 8, 8) and torch.isfinite(x0).all()
        maps = edm.invert(denoiser, x0, num_steps=3, **sigmas)
        assert maps.shape == x0.shape and torch.isfinite(maps).all()
        # D(x; sigma) = x - sigma * eps: at a tiny sigma the denoiser returns (almost) its input
        x = torch.randn(2, FRAMES, 4, 8, 8)
        assert torch.allclose(denoiser(x, sigmas["sigma_min"]), x, atol=0.1)
