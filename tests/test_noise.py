"""The noise priors against their closed forms (eqs. 3 and 4), with tolerances from standard errors."""

import math
import sys

import pytest
import torch

from pyoco_lab.noise import (
    KINDS,
    NoisePrior,
    correlation_by_distance,
    empirical_frame_correlation,
    empirical_frame_variance,
    fit_alpha,
    frame_correlation,
    progressive_mixing_matrix,
    sample_joint_noise,
    sample_noise,
    shared_and_individual_scales,
)

ALPHAS = [0.0, 0.1, 1.0, 2.0, 50.0, math.inf]
SHAPE = (2000, 6, 1, 4, 4)  # 32,000 independent samples per frame pair
N_SAMPLES = SHAPE[0] * SHAPE[2] * SHAPE[3] * SHAPE[4]
Z = 5.0  # five standard errors: every check below has false-alarm odds < 1e-6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_marginal_variance_is_one(kind, alpha):
    noise = sample_noise(kind, SHAPE, alpha, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    variance = empirical_frame_variance(noise)
    # Var(mean of x²) = 2/N for x ~ N(0, 1) -- but frames sharing noise are not independent
    # *across* frames, only within a frame; each frame is checked on its own.
    tolerance = Z * math.sqrt(2.0 / N_SAMPLES)
    assert torch.all((variance - 1.0).abs() < tolerance), variance


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_frame_correlation_matches_closed_form(kind, alpha):
    noise = sample_noise(kind, SHAPE, alpha, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = frame_correlation(kind, SHAPE[1], alpha)
    measured = empirical_frame_correlation(noise)
    # Standard error of a sample correlation: (1 - rho²) / sqrt(N); tiny floor for rho = 1.
    tolerance = Z * (1.0 - expected**2) / math.sqrt(N_SAMPLES) + 1e-9
    assert torch.all((measured - expected).abs() <= tolerance), (measured - expected).abs().max()


def test_closed_forms_match_the_paper():
    alpha = 2.0
    mixed = frame_correlation("mixed", 4, alpha)
    assert mixed[0, 1].item() == pytest.approx(alpha**2 / (1 + alpha**2))
    progressive = frame_correlation("progressive", 4, alpha)
    ratio = alpha / math.sqrt(1 + alpha**2)
    assert progressive[0, 3].item() == pytest.approx(ratio**3)
    assert progressive[2, 1].item() == pytest.approx(ratio)
    assert torch.equal(frame_correlation("iid", 3, 5.0), torch.eye(3, dtype=torch.float64))
    for kind in ("mixed", "progressive"):
        assert torch.equal(frame_correlation(kind, 5, 0.0), torch.eye(5, dtype=torch.float64))
        assert torch.all(frame_correlation(kind, 5, math.inf) == 1.0)


def test_alpha_inf_gives_identical_frames_without_nan():
    for kind in ("mixed", "progressive"):
        noise = sample_noise(kind, (3, 5, 2, 4, 4), math.inf, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(noise).all()
        assert torch.equal(noise, noise[:, :1].expand_as(noise))


def test_alpha_zero_equals_iid_draws():
    a = sample_noise("iid", (2, 4, 3, 5, 5), 0.0, generator=torch.Generator().manual_seed(7))
    for kind in ("mixed", "progressive"):
        b = sample_noise(kind, (2, 4, 3, 5, 5), 0.0, generator=torch.Generator().manual_seed(7))
        assert torch.equal(a, b)


def test_progressive_is_the_recursion_of_eq4():
    """The batched matrix form equals the frame-by-frame recursion eps_i = r eps_{i-1} + s z_i."""
    alpha = 1.5
    r, s = alpha / math.sqrt(1 + alpha**2), 1 / math.sqrt(1 + alpha**2)
    z = torch.randn(3, 7, 2, 3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = [z[:, 0]]
    for i in range(1, 7):
        expected.append(r * expected[-1] + s * z[:, i])
    expected = torch.stack(expected, dim=1)
    noise = sample_noise(
        "progressive", z.shape, alpha, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    torch.testing.assert_close(noise, expected)
    matrix = progressive_mixing_matrix(7, alpha)
    assert torch.allclose(matrix @ matrix.T, frame_correlation("progressive", 7, alpha))


def test_reproducible_with_generator_and_exact_shape():
    for kind in KINDS:
        a = sample_noise(kind, (2, 16, 3, 8, 8), 2.0, generator=torch.Generator().manual_seed(11))
        b = sample_noise(kind, (2, 16, 3, 8, 8), 2.0, generator=torch.Generator().manual_seed(11))
        assert a.shape == (2, 16, 3, 8, 8)
        assert torch.equal(a, b)
        assert a.dtype == torch.get_default_dtype()
    half = sample_noise("progressive", (1, 3, 1, 2, 2), 1.0, dtype=torch.float16)
    assert half.dtype == torch.float16


def test_joint_noise_video_part_follows_prior_images_are_iid():
    shape = (3000, 6, 1, 4, 4)
    noise = sample_joint_noise(
        "mixed",
        shape,
        1e6,
        num_video_frames=4,
        generator=torch.Generator().manual_seed(5),
        dtype=torch.float64,
    )
    correlation = empirical_frame_correlation(noise)
    tolerance = Z / math.sqrt(shape[0] * 16)
    assert correlation[0, 3] > 0.99  # video frames nearly identical at a huge alpha
    assert abs(correlation[0, 4]) < tolerance and abs(correlation[4, 5]) < tolerance  # images independent
    assert torch.all((empirical_frame_variance(noise) - 1).abs() < Z * math.sqrt(2 / (shape[0] * 16)))
    only_video = sample_joint_noise("progressive", (1, 4, 1, 2, 2), 2.0, num_video_frames=4)
    assert only_video.shape == (1, 4, 1, 2, 2)
    with pytest.raises(ValueError, match="num_video_frames"):
        sample_joint_noise("iid", (1, 4, 1, 2, 2), 0.0, num_video_frames=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kind="mixed", shape=(1, 2, 3, 4, 4), alpha=-1.0), ">= 0"),
        (dict(kind="mixed", shape=(1, 2, 3, 4, 4), alpha=float("nan")), "NaN"),
        (dict(kind="pink", shape=(1, 2, 3, 4, 4), alpha=1.0), "unknown noise prior"),
        (dict(kind="iid", shape=(2, 3, 4, 4), alpha=1.0), "frames"),
        (dict(kind="iid", shape=(2, 0, 3, 4, 4), alpha=1.0), "positive"),
        (dict(kind="iid", shape=(1, 2, 3, 4, 4), alpha="a lot"), "number"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_noise(kwargs["kind"], kwargs["shape"], kwargs["alpha"])


def test_noise_prior_object_and_fit_alpha_round_trip():
    prior = NoisePrior("progressive", 2.0)
    assert prior.sample((1, 3, 1, 2, 2)).shape == (1, 3, 1, 2, 2)
    assert torch.equal(prior.correlation(4), frame_correlation("progressive", 4, 2.0))
    assert str(prior) == "progressive(alpha=2)"
    with pytest.raises(ValueError):
        NoisePrior("mixed", -0.5)
    for kind, alpha in [("mixed", 1.0), ("progressive", 2.0), ("progressive", 0.3)]:
        curve = correlation_by_distance(kind, 10, alpha)
        assert fit_alpha(kind, range(10), curve) == pytest.approx(alpha, rel=1e-3)


HUGE_ALPHAS = [1e200, 1e300, sys.float_info.max]


@pytest.mark.parametrize("alpha", HUGE_ALPHAS)
@pytest.mark.parametrize("kind", ["mixed", "progressive"])
def test_huge_finite_alpha_is_the_inf_limit_not_zero_variance(kind, alpha):
    """alpha² overflows past ~1e154; that must not turn the prior into zero-variance noise."""
    closed = frame_correlation(kind, 6, alpha)
    assert torch.isfinite(closed).all()
    torch.testing.assert_close(closed, frame_correlation(kind, 6, math.inf), rtol=0, atol=1e-15)
    matrix = progressive_mixing_matrix(6, alpha)
    assert torch.isfinite(matrix).all()
    torch.testing.assert_close(matrix @ matrix.T, frame_correlation("progressive", 6, math.inf))
    for dtype in (torch.float64, torch.float32):
        noise = sample_noise(kind, SHAPE, alpha, generator=torch.Generator().manual_seed(4), dtype=dtype)
        assert torch.isfinite(noise).all()
        variance = empirical_frame_variance(noise)
        assert torch.all((variance - 1.0).abs() < Z * math.sqrt(2.0 / N_SAMPLES)), variance
        measured = empirical_frame_correlation(noise)
        assert torch.isfinite(measured).all()
        torch.testing.assert_close(measured, torch.ones_like(measured), rtol=0, atol=1e-6)
    assert fit_alpha(kind, range(6), closed[0]) == fit_alpha(
        kind, range(6), frame_correlation(kind, 6, math.inf)[0]
    )
    assert NoisePrior(kind, alpha).correlation(3).isfinite().all()


def test_alpha_just_below_overflow_is_unchanged():
    """The textbook form is kept where a² is finite: alpha = 2 (the presets) is bit-identical."""
    for alpha in (0.5, 2.0, 1e100, 1e150):
        shared, individual = shared_and_individual_scales(alpha)
        norm = math.sqrt(1.0 + alpha * alpha)
        assert (shared, individual) == (alpha / norm, 1.0 / norm)
    for alpha in (1e101, 1e160, sys.float_info.max):
        shared, individual = shared_and_individual_scales(alpha)
        assert shared == 1.0 and 0.0 < individual <= 1.0 / alpha * (1 + 1e-15)
