"""EDM math against closed forms: for Gaussian data N(0, s² I) the ideal denoiser is
D(x; sigma) = x s² / (s² + sigma²) and eq. 2 has the exact solution x(sigma) ∝ sqrt(s² + sigma²)."""

import math

import numpy as np
import pytest
import torch

from pyoco_lab import edm
from pyoco_lab.noise import NoisePrior, empirical_frame_correlation

S = 0.5  # data standard deviation (= sigma_data, which makes the ideal weighted loss exactly 1)


def gaussian_denoiser(x, sigma):
    sigma = edm.expand_sigma(sigma, x).to(x.dtype)
    return x * S**2 / (S**2 + sigma**2)


def exact_flow(x, sigma_from, sigma_to):
    return x * math.sqrt(S**2 + sigma_to**2) / math.sqrt(S**2 + sigma_from**2)


def observed_orders(errors):
    return [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]


@pytest.fixture
def noise():
    return torch.randn(4, 3, 2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_preconditioning_coefficients_match_edm():
    sigma = torch.tensor([0.1, 1.0, 10.0])
    c_skip, c_out, c_in, c_noise = edm.precondition_coefficients(sigma)
    torch.testing.assert_close(c_skip, 0.25 / (sigma**2 + 0.25))
    torch.testing.assert_close(c_out, sigma * 0.5 / (sigma**2 + 0.25).sqrt())
    torch.testing.assert_close(c_in, 1 / (sigma**2 + 0.25).sqrt())
    torch.testing.assert_close(c_noise, sigma.log() / 4)

    class Zero(torch.nn.Module):
        def forward(self, x, c_noise):
            assert c_noise.shape == (x.shape[0],)
            return torch.zeros_like(x)

    x = torch.randn(3, 2, 3, 4, 4)
    out = edm.Denoiser(Zero())(x, sigma)
    torch.testing.assert_close(out, x * c_skip.reshape(3, 1, 1, 1, 1))


def test_training_sigma_is_log_normal():
    n = 200_000
    log_sigma = edm.sample_training_sigma(n, generator=torch.Generator().manual_seed(0)).log().double()
    assert abs(log_sigma.mean().item() - edm.P_MEAN) < 5 * edm.P_STD / math.sqrt(n)
    assert abs(log_sigma.std().item() - edm.P_STD) < 5 * edm.P_STD / math.sqrt(2 * n)


def test_weighted_loss_of_the_ideal_denoiser_is_one():
    """lambda(sigma) E||D*(x + sigma eps) - x||² = lambda s² sigma² / (s² + sigma²) = 1 if s = sigma_data."""
    g = torch.Generator().manual_seed(1)
    n = 4000
    x = S * torch.randn(n, 2, 1, 4, 4, generator=g, dtype=torch.float64)
    sigma = edm.sample_training_sigma(n, generator=g)
    for prior in (NoisePrior("iid"), NoisePrior("progressive", 2.0)):
        eps = prior.sample(x.shape, generator=g, dtype=torch.float64)
        loss = edm.edm_loss(gaussian_denoiser, x, eps, sigma)
        assert loss.shape == (n,)
        # each sample's loss is a mean of 32 chi²(1)-like terms (correlated across frames): SE <= sqrt(2/n)
        assert abs(loss.mean().item() - 1.0) < 5 * math.sqrt(2.0 / n)
    with pytest.raises(ValueError, match="shape"):
        edm.edm_loss(gaussian_denoiser, x, eps[:, :1], sigma)


def test_karras_schedule():
    sigmas = edm.karras_sigmas(18)
    assert len(sigmas) == 19 and sigmas[-1] == 0
    assert sigmas[0].item() == pytest.approx(80.0) and sigmas[-2].item() == pytest.approx(0.002)
    assert torch.all(sigmas[1:] < sigmas[:-1])
    i = 5  # eq. 5 at one interior point
    expected = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert sigmas[i].item() == pytest.approx(expected)
    with pytest.raises(ValueError):
        edm.karras_sigmas(0)


@pytest.mark.parametrize(
    "name, options, low, high",
    [
        ("euler", {}, 0.85, 1.15),
        ("heun", {}, 1.85, 2.3),
        ("rk3", {}, 2.6, 3.6),
        ("deis", {"order": 1}, 0.85, 1.15),
        ("deis", {"order": 2}, 1.7, 2.3),
        ("deis", {"order": 3}, 2.6, 3.4),
        ("deis", {"order": 3, "variant": "rhoab"}, 2.6, 3.4),
    ],
)
def test_samplers_converge_at_their_order(noise, name, options, low, high):
    """Integrate sigma_max -> sigma_min (the last step into 0 is Euler by design, tested below)."""
    errors = []
    for n in (32, 64, 128):
        sigmas = edm.karras_sigmas(n)[:-1]
        x_end = edm.SAMPLERS[name](gaussian_denoiser, noise, sigmas, **options)
        exact = exact_flow(noise * 80.0, 80.0, 0.002)
        errors.append((x_end - exact).abs().max().item())
    orders = observed_orders(errors)
    assert low < orders[-1] < high, (errors, orders)


@pytest.mark.parametrize("sampler", ["euler", "heun", "rk3", "deis", "stochastic"])
def test_full_samplers_reach_the_exact_clean_sample(noise, sampler):
    x0 = edm.sample(gaussian_denoiser, noise, sampler=sampler, num_steps=128)
    exact = exact_flow(noise * 80.0, 80.0, 0.0)
    tolerance = 0.05 if sampler == "euler" else 2e-3
    assert (x0 - exact).abs().max().item() < tolerance


@pytest.mark.parametrize("solver, low, high", [("euler", 0.85, 1.15), ("heun", 1.85, 2.2), ("rk3", 2.7, 3.5)])
def test_inversion_converges_to_the_exact_noise(solver, low, high):
    x0 = S * torch.randn(3, 4, 2, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = exact_flow(x0, 0.002, 80.0) / 80.0
    errors = [
        (edm.invert(gaussian_denoiser, x0, num_steps=n, solver=solver) - exact).abs().max().item()
        for n in (32, 64, 128)
    ]
    assert low < observed_orders(errors)[-1] < high, errors
    # Data N(0, s²) maps to noise of std sqrt(s² + smax²)/smax ~ 1: a unit Gaussian, as in Fig. 2.
    # Integrating the wrong way (towards sigma = 0) would shrink x instead.
    assert edm.invert(gaussian_denoiser, x0, num_steps=64).std().item() > 0.9


def test_deis_inversion_converges():
    x0 = S * torch.randn(2, 2, 1, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = exact_flow(x0, 0.002, 80.0) / 80.0
    errors = [
        (edm.invert(gaussian_denoiser, x0, num_steps=n, solver="deis") - exact).abs().max().item()
        for n in (32, 64, 128)
    ]
    assert observed_orders(errors)[-1] > 2.6, errors


@pytest.mark.parametrize("solver, tolerance", [("heun", 1e-3), ("rk3", 5e-4), ("deis", 5e-3)])
def test_invert_then_sample_reconstructs(solver, tolerance):
    x0 = S * torch.randn(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    noise = edm.invert(gaussian_denoiser, x0, num_steps=64, solver=solver)
    sampler = "deis" if solver == "deis" else solver
    back = edm.sample(gaussian_denoiser, noise, sampler=sampler, num_steps=64)
    assert (back - x0).abs().max().item() < tolerance * x0.abs().max().item()


def test_invert_frames_as_batch_equals_per_frame():
    calls = []

    def image_only(x, sigma):
        calls.append(x.ndim)
        assert x.ndim == 4
        return gaussian_denoiser(x, sigma)

    video = S * torch.randn(2, 5, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    batched = edm.invert(image_only, video, num_steps=8, frames_as_batch=True)
    per_frame = torch.stack([edm.invert(image_only, video[:, f], num_steps=8) for f in range(5)], dim=1)
    torch.testing.assert_close(batched, per_frame)
    assert batched.shape == video.shape
    with pytest.raises(ValueError, match="video"):
        edm.invert(image_only, video[:, 0], frames_as_batch=True)


def test_stochastic_sampler_without_churn_is_heun(noise):
    sigmas = edm.karras_sigmas(12)
    torch.testing.assert_close(
        edm.sample_stochastic(gaussian_denoiser, noise, sigmas),
        edm.sample_heun(gaussian_denoiser, noise, sigmas),
    )


def test_stochastic_sampler_samples_the_data_distribution_with_correlated_churn():
    """Churn must keep the marginal right: outputs of N(0, s²) data have std s, whatever the prior."""
    g = torch.Generator().manual_seed(6)
    prior = NoisePrior("progressive", 2.0)
    noise = prior.sample((1000, 4, 1, 4, 4), generator=g, dtype=torch.float64)
    draws = []

    def correlated(x, sigma):
        fresh = prior.sample(x.shape, generator=g, dtype=x.dtype)
        draws.append(fresh)
        return fresh

    x0 = edm.sample(
        gaussian_denoiser,
        noise,
        sampler="stochastic",
        num_steps=256,
        s_churn=40,
        s_tmin=0.05,
        s_tmax=50,
        noise_sampler=correlated,
    )
    n = x0.numel()
    assert draws, "the pluggable noise sampler was never called"
    # Sampling error: 5 standard errors of a std estimate (frames counted as one effective
    # sample); discretisation bias of the churned sampler at 256 steps, measured: < 0.004.
    assert abs(x0.std().item() - S) < 5 * S / math.sqrt(2 * n / 4) + 0.004
    # the churn noise carries the prior's frame correlation
    assert empirical_frame_correlation(torch.cat(draws))[0, 1].item() == pytest.approx(
        2 / math.sqrt(5), abs=0.02
    )
    with pytest.raises(ValueError, match="sampler"):
        edm.sample(gaussian_denoiser, noise, sampler="ddim")


def test_guided_denoiser():
    def conditional(x, sigma, label):
        return x * 0 + label

    x, sigma = torch.zeros(2, 3), torch.ones(2)
    guided = edm.guided_denoiser(conditional, 3.0, {"label": 1.0}, {"label": 0.0})
    torch.testing.assert_close(guided(x, sigma), torch.full((2, 3), 3.0))
    same = edm.guided_denoiser(conditional, 1.0, {"label": 1.0}, {"label": 0.0})
    torch.testing.assert_close(same(x, sigma), torch.ones(2, 3))


def test_deis_coefficients_are_consistent():
    """Each step's weights sum to the step length in sigma (they integrate a partition of unity)."""
    sigmas = edm.karras_sigmas(10)
    for variant in ("tab", "rhoab"):
        rows = edm.deis_coefficients(sigmas, 3, variant)
        steps = (sigmas[1:] - sigmas[:-1]).numpy()
        np.testing.assert_allclose([sum(r) for r in rows], steps, rtol=1e-6, atol=1e-9)
    t = edm.sigma_to_vp_time(np.array([0.01, 1.0, 80.0]))
    np.testing.assert_allclose(edm.vp_time_to_sigma(t), [0.01, 1.0, 80.0], rtol=1e-10)
