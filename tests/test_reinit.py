"""Low-frequency re-initialisation (FreeInit / FreqPrior, ``pyoco_lab.reinit``) against closed forms: the
Butterworth filter's values, the frequency mix's limits and variance, and the whole loop on the exact
denoiser of Gaussian data, where sampling and inversion are linear maps known in closed form."""

import pytest
import torch

from pyoco_lab import cli, edm, reinit, sampling
from pyoco_lab.noise import NoisePrior
from pyoco_lab.sampling import sample_videos

S = 0.5


def gaussian_denoiser(x, sigma, **cond):  # the exact denoiser of N(0, S²) data
    sigma = edm.expand_sigma(sigma, x).to(x.dtype)
    return x * S**2 / (S**2 + sigma**2)


def test_the_butterworth_filter_passes_zero_halves_the_stop_and_is_symmetric():
    low = reinit.low_pass_filter(8, 16, 16, spatial_stop=0.25, temporal_stop=0.25, order=4)
    assert low.shape == (8, 1, 16, 16)
    assert low[0, 0, 0, 0] == 1.0
    # f_h = 2 · fftfreq(16)[2] = 0.25: exactly the stop frequency, where a Butterworth filter gives 1/2
    assert low[0, 0, 2, 0].item() == pytest.approx(0.5)
    # f_t = 2 · fftfreq(8)[1] = 0.25 is the stop too (the time axis scaled by d_s / d_t = 1); 0.5 is twice it
    assert low[1, 0, 0, 0].item() == pytest.approx(0.5)
    assert low[2, 0, 0, 0].item() == pytest.approx(1 / (1 + 2**8))
    # symmetric under f → −f on every axis (so the mixed noise is real)
    flipped = torch.roll(low.flip(0, 2, 3), shifts=(1, 1, 1), dims=(0, 2, 3))
    torch.testing.assert_close(low, flipped)
    # a temporal stop of 1 stretches the band over time: the filter falls more slowly along frames
    wide = reinit.low_pass_filter(8, 16, 16, spatial_stop=0.25, temporal_stop=1.0, order=4)
    assert wide[1, 0, 0, 0] > low[1, 0, 0, 0]


def test_the_temporal_axis_is_scaled_by_the_ratio_of_the_stops():
    low = reinit.low_pass_filter(8, 16, 16, spatial_stop=0.25, temporal_stop=0.5, order=4)
    # f_t = 2 · fftfreq(8)[2] = 0.5 is the temporal stop: scaled by 0.25 / 0.5 it sits at d_s, value 1/2
    assert low[2, 0, 0, 0].item() == pytest.approx(0.5)
    assert low[1, 0, 0, 0].item() == pytest.approx(1 / (1 + (0.5**2) ** 4))


def test_the_mix_takes_each_band_from_its_source_and_keeps_unit_variance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 8, 3, 16, 16, generator=g)
    b = torch.randn(64, 8, 3, 16, 16, generator=g)
    low = reinit.low_pass_filter(8, 16, 16, spatial_stop=0.5, temporal_stop=0.5, order=2)
    torch.testing.assert_close(reinit.mix_frequencies(a, b, torch.ones_like(low)), a, atol=1e-5, rtol=0)
    torch.testing.assert_close(reinit.mix_frequencies(a, b, torch.zeros_like(low)), b, atol=1e-5, rtol=0)
    mixed = reinit.mix_frequencies(a, b, low)
    assert mixed.var().item() == pytest.approx(1.0, abs=0.01)
    # FreeInit's complement 1 − L would lose variance where 0 < L < 1: the reason for √(1 − L²)
    freeinit = torch.fft.ifftn(
        torch.fft.fftn(a.double(), dim=(1, 3, 4)) * low
        + torch.fft.fftn(b.double(), dim=(1, 3, 4)) * (1 - low),
        dim=(1, 3, 4),
    ).real
    assert freeinit.var().item() < 0.95
    # frames that share their noise pass that sharing on in the low band only: frame 0 and frame 3 of the
    # mix correlate in the band (0.76 measured), barely over the whole field (0.14), and not at all when the
    # low-band source is independent from frame to frame
    lowpass = lambda x: torch.fft.ifftn(torch.fft.fftn(x, dim=(1, 3, 4)) * low, dim=(1, 3, 4)).real  # noqa: E731
    frames_corr = lambda x: torch.corrcoef(torch.stack([x[:, 0].flatten(), x[:, 3].flatten()]))[0, 1]  # noqa: E731
    shared = reinit.mix_frequencies(a[:, :1].expand_as(a).contiguous(), b, low)
    independent = reinit.mix_frequencies(a, b, low)
    assert frames_corr(lowpass(shared)) > 0.6 and abs(frames_corr(lowpass(independent))) < 0.1
    assert frames_corr(shared) < 0.3


def test_the_mix_refuses_mismatched_or_non_video_inputs():
    low = reinit.low_pass_filter(4, 8, 8, spatial_stop=0.25, temporal_stop=0.25, order=4)
    with pytest.raises(ValueError, match="one shape"):
        reinit.mix_frequencies(torch.zeros(1, 4, 3, 8, 8), torch.zeros(1, 4, 3, 8, 4), low)
    with pytest.raises(ValueError, match=r"\(B, F, C, H, W\)"):
        reinit.mix_frequencies(torch.zeros(4, 3, 8, 8), torch.zeros(4, 3, 8, 8), low)


def test_a_reinit_spec_is_checked_and_labelled():
    assert reinit.Reinit().label == "reinit3"
    assert reinit.Reinit(2, spatial_stop=0.5).label == "reinit2-s0.5-t0.25-o4"
    for bad in (dict(iterations=0), dict(spatial_stop=0.0), dict(temporal_stop=1.5), dict(order=0)):
        with pytest.raises(ValueError):
            reinit.Reinit(**bad)


def test_one_iteration_is_plain_sampling_and_two_resample_the_mixed_noise():
    """On Gaussian data sampling maps noise n to ≈ S·n and inversion maps it back, both linear: two passes
    must give what one pass gives from mix(n, fresh, L)."""
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(3, 8, 2, 8, 8, generator=g, dtype=torch.float64)
    fresh = torch.randn(3, 8, 2, 8, 8, generator=g, dtype=torch.float64)
    spec = reinit.Reinit(2, spatial_stop=0.5, temporal_stop=0.5)
    options = dict(sampler="heun", num_steps=40)
    plain = edm.sample(gaussian_denoiser, noise, **options)
    once = reinit.sample_reinit(gaussian_denoiser, noise, lambda: fresh, reinit.Reinit(1), **options)
    torch.testing.assert_close(once, plain)
    twice = reinit.sample_reinit(gaussian_denoiser, noise, lambda: fresh, spec, **options)
    low = reinit.low_pass_filter(8, 8, 8, spatial_stop=0.5, temporal_stop=0.5, order=4)
    expected = edm.sample(gaussian_denoiser, reinit.mix_frequencies(noise, fresh, low), **options)
    torch.testing.assert_close(twice, expected, atol=2e-3, rtol=0)
    assert (twice - plain).abs().max() > 0.1  # the high band is new


def test_sample_videos_reinit_is_seeded_batch_invariant_and_starts_from_the_plain_sample():
    prior = NoisePrior("progressive", 2.0)
    kwargs = dict(sampler="heun", num_steps=6, seed=4, progress=False, device="cpu")
    spec = reinit.Reinit(2)
    a = sample_videos(gaussian_denoiser, prior, (4, 3, 8, 8), 6, batch_size=2, reinit=spec, **kwargs)
    b = sample_videos(gaussian_denoiser, prior, (4, 3, 8, 8), 6, batch_size=6, reinit=spec, **kwargs)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    plain = sample_videos(gaussian_denoiser, prior, (4, 3, 8, 8), 6, batch_size=6, **kwargs)
    one = sample_videos(
        gaussian_denoiser, prior, (4, 3, 8, 8), 6, batch_size=6, reinit=reinit.Reinit(1), **kwargs
    )
    torch.testing.assert_close(one, plain)
    assert not torch.allclose(a, plain)


def test_the_stochastic_sampler_is_reinitialised_like_its_ode_step():
    """Without churn the stochastic sampler is Heun's ODE; re-initialised, it must match Heun's result."""
    noise = torch.randn(2, 4, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    fresh = torch.randn(2, 4, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    spec = reinit.Reinit(2)
    stochastic = reinit.sample_reinit(
        gaussian_denoiser, noise, lambda: fresh, spec, sampler="stochastic", num_steps=8, s_churn=0.0
    )
    heun = reinit.sample_reinit(gaussian_denoiser, noise, lambda: fresh, spec, sampler="heun", num_steps=8)
    torch.testing.assert_close(stochastic, heun)


def test_the_commands_refuse_a_bad_reinit_in_one_line(tmp_path, capsys):
    code = cli.main(
        ["sampling-sweep", "pretrained:zoo-32-iid", "--reinit", "0", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code != 0 and "at least 1 iteration" in err and not (tmp_path / "o").exists()


def test_sample_videos_progress_moves_per_sampler_step(monkeypatch):
    """#43 item 4: a bar that sits at 0/1 for minutes cannot be told from a hang; it counts sampler steps
    (per batch when re-initialising, whose passes and inversions are not one sampler's steps)."""
    bars = []

    class Recorder:
        def __init__(self, *, total, disable, **kwargs):
            self.total, self.done, self.unit = total, 0, kwargs.get("unit")
            bars.append(self)

        def update(self, n):
            self.done += n

        def close(self):
            pass

    monkeypatch.setattr(sampling, "tqdm", Recorder)
    prior = NoisePrior("progressive", 2.0)
    for sampler in ("heun", "deis", "stochastic"):
        sample_videos(gaussian_denoiser, prior, (4, 3, 8, 8), 5, batch_size=2, sampler=sampler, num_steps=6)
    twice = reinit.Reinit(2)
    sample_videos(gaussian_denoiser, prior, (4, 3, 8, 8), 5, batch_size=2, num_steps=6, reinit=twice)
    assert [(bar.total, bar.done, bar.unit) for bar in bars] == [(18, 18, "step")] * 3 + [(3, 3, "batch")]
