"""Tests of pyoco_lab.metrics: Fréchet distance, IS, temporal statistics, weight loading, lab metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from pyoco_lab.evaluation import format_table
from pyoco_lab.evaluation.keys import store_entry
from pyoco_lab.metrics import lab
from pyoco_lab.metrics.frechet import FeatureStats, frechet_distance, frechet_distance_from_features
from pyoco_lab.metrics.scores import inception_score, splits_for
from pyoco_lab.metrics.temporal import (
    consecutive_frame_similarity,
    motion_energy,
    sample_diversity,
    temporal_statistics,
)
from pyoco_lab.sampling import sample_videos

# ----------------------------------------------------------------------------------------------------
# Fréchet distance


def _random_spd(rng: np.random.Generator, dim: int, condition: float = 10.0) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * np.geomspace(1.0, 1.0 / condition, dim)) @ q.T


def _direct_scipy_fd(mu_a, cov_a, mu_b, cov_b) -> float:
    """The textbook formula, written out independently of the module."""
    root = np.real(scipy.linalg.sqrtm(cov_a @ cov_b))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def _symmetric_reference_fd(mu_a, cov_a, mu_b, cov_b) -> float:
    """Same quantity via sqrtm of the symmetric PSD matrix Σ_a^½ Σ_b Σ_a^½ (a different numerical path)."""
    root_a = np.real(scipy.linalg.sqrtm(cov_a))
    inner = np.real(scipy.linalg.sqrtm(root_a @ cov_b @ root_a))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(inner))


def test_frechet_matches_direct_scipy_on_well_conditioned_covariances():
    rng = np.random.default_rng(0)
    dim = 32
    mu_a, mu_b = rng.standard_normal(dim), rng.standard_normal(dim)
    cov_a, cov_b = _random_spd(rng, dim), _random_spd(rng, dim)
    result = frechet_distance(mu_a, cov_a, mu_b, cov_b)
    expected = _direct_scipy_fd(mu_a, cov_a, mu_b, cov_b)
    assert result.method == "sqrtm" and result.eps == 0.0
    assert result.sqrtm_max_imag < 1e-8
    # Same algorithm on the same float64 inputs: agreement to round-off of a trace of ~dim terms.
    assert result.distance == pytest.approx(expected, rel=1e-10, abs=1e-10 * dim)
    assert float(result) == result.distance
    assert result.mean_term == pytest.approx(np.sum((mu_a - mu_b) ** 2), rel=1e-12)


def test_frechet_closed_form_for_commuting_covariances():
    # Diagonal (hence commuting) covariances: tr((Σ_a Σ_b)^½) = Σ √(a_i b_i),
    # so d² = ||Δμ||² + Σ (√a_i − √b_i)².
    a = np.array([1.0, 4.0, 9.0, 0.25])
    b = np.array([4.0, 4.0, 1.0, 1.0])
    mu_a, mu_b = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    result = frechet_distance(mu_a, np.diag(a), mu_b, np.diag(b))
    expected = 1.0 + 4.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert result.distance == pytest.approx(expected, rel=1e-12)


def test_frechet_one_dimensional_gaussians():
    # d² between N(m1, s1²) and N(m2, s2²) is (m1 − m2)² + (s1 − s2)².
    result = frechet_distance([0.5], [[4.0]], [-1.0], [[0.09]])
    assert result.distance == pytest.approx(1.5**2 + (2.0 - 0.3) ** 2, rel=1e-12)


def test_frechet_identical_gaussians_is_zero_and_invariant_to_rotation_and_scales_quadratically():
    rng = np.random.default_rng(1)
    dim = 24
    mu, cov = rng.standard_normal(dim), _random_spd(rng, dim)
    self_distance = frechet_distance(mu, cov, mu, cov).distance
    # sqrtm(Σ²) returns Σ up to ~1e-13 relative error per entry; the trace sums dim of them.
    assert abs(self_distance) < 1e-9 * np.trace(cov)

    mu_b, cov_b = rng.standard_normal(dim), _random_spd(rng, dim, condition=100.0)
    base = frechet_distance(mu, cov, mu_b, cov_b).distance
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    rotated = frechet_distance(q @ mu, q @ cov @ q.T, q @ mu_b, q @ cov_b @ q.T).distance
    assert rotated == pytest.approx(base, rel=1e-9)
    scaled = frechet_distance(3 * mu, 9 * cov, 3 * mu_b, 9 * cov_b).distance
    assert scaled == pytest.approx(9 * base, rel=1e-9)


def test_frechet_singular_covariances_fall_back_and_report():
    # Zero variances in different coordinates: the product Σ_a Σ_b is singular.
    a = np.array([1.0, 4.0, 0.0, 0.0])
    b = np.array([0.0, 1.0, 0.0, 9.0])
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", scipy.linalg.LinAlgWarning
        )  # scipy notes the singular input; we check it
        result = frechet_distance(np.zeros(4), np.diag(a), np.zeros(4), np.diag(b))
    # Whatever path was taken, it must be reported, and the value must be the closed form of the
    # covariances it actually used (ε·I added to both when method says so).
    shifted_a, shifted_b = a + result.eps, b + result.eps
    expected = ((np.sqrt(shifted_a) - np.sqrt(shifted_b)) ** 2).sum()
    assert result.method in {"sqrtm", "sqrtm+eps", "eigh"}
    assert result.distance == pytest.approx(expected, rel=1e-6, abs=1e-9)
    # And close to the unshifted closed form (11) within the ε effect, 2·Σ√ε·(√a+√b) ≤ 0.02 here.
    assert result.distance == pytest.approx(11.0, abs=0.02)


def test_frechet_non_finite_sqrtm_retries_with_reported_eps(monkeypatch):
    # Older scipy returns inf/NaN for some singular products; pretend it did once and check the ε retry.
    a, b = np.array([1.0, 4.0, 0.0]), np.array([0.0, 1.0, 9.0])
    real_sqrtm, calls = scipy.linalg.sqrtm, []

    def flaky_sqrtm(m):
        calls.append(m)
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(scipy.linalg, "sqrtm", flaky_sqrtm)
    result = frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b), eps=1e-4)
    assert result.method == "sqrtm+eps" and result.eps == 1e-4 and len(calls) == 2
    expected = ((np.sqrt(a + 1e-4) - np.sqrt(b + 1e-4)) ** 2).sum()
    assert result.distance == pytest.approx(expected, rel=1e-10)


def test_frechet_from_fewer_samples_than_dimensions_is_finite_and_matches_symmetric_reference():
    rng = np.random.default_rng(2)
    dim, n = 48, 20  # rank ≤ 19 covariances, as with 2,048 samples of 2,048-d Inception features at small N
    feats_a = rng.standard_normal((n, dim))
    feats_b = rng.standard_normal((n, dim)) * 1.5 + 0.3
    with np.errstate(all="ignore"):
        result = frechet_distance_from_features(feats_a, feats_b)
    stats_a, stats_b = FeatureStats.from_features(feats_a), FeatureStats.from_features(feats_b)
    eye = result.eps * np.eye(dim)
    expected = _symmetric_reference_fd(stats_a.mean, stats_a.cov + eye, stats_b.mean, stats_b.cov + eye)
    assert np.isfinite(result.distance) and result.distance > 0
    # The two numerical paths differ by round-off amplified by the rank deficiency; 1e-6·trace bounds it.
    scale = np.trace(stats_a.cov) + np.trace(stats_b.cov)
    assert result.distance == pytest.approx(expected, abs=1e-6 * scale)


def test_frechet_eigh_fallback_when_sqrtm_is_complex(monkeypatch):
    # Force the complex branch: pretend scipy returned a square root with a large imaginary part.
    rng = np.random.default_rng(3)
    dim = 8
    mu_a, mu_b, cov_a, cov_b = (
        rng.standard_normal(dim),
        rng.standard_normal(dim),
        _random_spd(rng, dim),
        _random_spd(rng, dim),
    )
    true = _direct_scipy_fd(mu_a, cov_a, mu_b, cov_b)
    real_sqrtm = scipy.linalg.sqrtm
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m: real_sqrtm(m) + 0.5j)
    with pytest.warns(RuntimeWarning, match="imaginary part"):
        result = frechet_distance(mu_a, cov_a, mu_b, cov_b)
    assert result.method == "eigh" and result.sqrtm_max_imag > 1e-3
    assert result.distance == pytest.approx(true, rel=1e-9)


def test_frechet_rejects_bad_input_with_a_fix():
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats.from_features(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="NaN"):
        FeatureStats.from_features(np.full((4, 2), np.nan))


def test_feature_stats_accepts_torch_and_uses_float64():
    feats = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    stats = FeatureStats.from_features(feats)
    assert stats.mean.dtype == np.float64 and stats.count == 50
    np.testing.assert_allclose(stats.cov, np.cov(feats.double().numpy(), rowvar=False), rtol=1e-12)


# ----------------------------------------------------------------------------------------------------
# Inception Score


def test_inception_score_extremes_and_entropy_identity():
    k = 5
    assert inception_score(np.full((40, k), 1.0 / k), num_splits=4)[0] == pytest.approx(1.0, abs=1e-12)
    # Confident and evenly spread over k classes: exp(log k) = k.
    one_hot = np.eye(k)[np.arange(50) % k]
    assert inception_score(one_hot, num_splits=1)[0] == pytest.approx(k, rel=1e-12)
    # IS = exp(H(p(y)) − E H(p(y|x))) for a single split.
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((64, 7)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    marginal = p.mean(0)
    expected = np.exp(-(marginal * np.log(marginal)).sum() + (p * np.log(p)).sum(1).mean())
    assert inception_score(p, num_splits=1)[0] == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="softmax"):
        inception_score(logits, num_splits=1)
    # The protocol's 10 splits at 2,048 samples; small evaluations keep ~100 samples per split.
    assert [splits_for(n) for n in (6, 64, 250, 2048, 10000)] == [1, 1, 2, 10, 10]


# ----------------------------------------------------------------------------------------------------
# Temporal statistics


def test_temporal_statistics_separate_frozen_moving_and_flickering_videos():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 1, 3, 16, 16, generator=g)
    frozen = base.expand(4, 8, 3, 16, 16)
    flicker = torch.randn(4, 8, 3, 16, 16, generator=g)
    # Smooth motion: a smooth pattern translated by one pixel per frame.
    smooth = torch.nn.functional.avg_pool2d(torch.randn(4, 3, 24, 40, generator=g), 5, stride=1, padding=2)
    moving = torch.stack([smooth[..., 4:20, t : t + 16] for t in range(8)], dim=1)

    assert torch.allclose(consecutive_frame_similarity(frozen), torch.ones(4, dtype=torch.float64))
    assert torch.equal(motion_energy(frozen), torch.zeros(4, dtype=torch.float64))
    # Independent frames of 768 values: cosine ~ N(0, 1/768), so |mean over 7 pairs| < 0.1 with huge margin.
    assert consecutive_frame_similarity(flicker).abs().max() < 0.1
    cos_moving = consecutive_frame_similarity(moving)
    assert (cos_moving > 0.5).all() and (cos_moving < 0.999).all()
    assert (motion_energy(flicker) > motion_energy(moving)).all()

    stats = temporal_statistics(moving)
    assert set(stats) == {"frame-cosine", "motion-energy", "diversity"}


def test_sample_diversity_is_zero_for_copies_and_rms_distance_for_two():
    a = torch.zeros(1, 2, 1, 2, 2)
    b = torch.full((1, 2, 1, 2, 2), 3.0)
    assert sample_diversity(torch.cat([a, a, a])) == 0.0
    assert sample_diversity(torch.cat([a, b])) == pytest.approx(3.0, rel=1e-12)
    with pytest.raises(ValueError, match="B, F, C, H, W"):
        motion_energy(torch.zeros(2, 3, 4, 4))


# ----------------------------------------------------------------------------------------------------
# Standard networks from local TorchScript files (stand-ins saved by the test in the same format)


class _StandInI3D(torch.nn.Module):
    """Same call convention as i3d_torchscript.pt; its features expose the layout and values it received."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.shape[1] != 3 or not (rescale and resize and return_features):
            raise RuntimeError("stand-in I3D called with the wrong preprocessing")
        v = x.float()
        per_frame = v.mean(dim=(1, 3, 4))  # (B, T): only correct if time is axis 2
        per_channel = v.mean(dim=(2, 3, 4))  # (B, 3)
        return torch.cat([per_frame, per_channel], dim=1) * self.scale


class _StandInC3D(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(16, 101)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.shape[1] != 3 or x.shape[2] != 16:
            raise RuntimeError("stand-in C3D wants uint8 (B, 3, 16, H, W)")
        return torch.softmax(self.head(x.float().mean(dim=(1, 3, 4)) / 255.0), dim=1)


class _StandInInception(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3 or not return_features:
            raise RuntimeError("stand-in Inception wants uint8 (N, 3, H, W) and return_features=True")
        return x.float().mean(dim=(2, 3)) * self.scale


def _save_scripted(module: torch.nn.Module, path) -> None:
    with warnings.catch_warnings():  # TorchScript is deprecated in new torch, yet it is the community format
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(path))


def _ramp_videos(n: int, frames: int, seed: int) -> torch.Tensor:
    """Frame t, channel c of video b is the constant value v[b, t] + 0.1·c, in [-1, 1]."""
    v = torch.rand(n, frames, 1, 1, 1, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.9
    return (v + 0.1 * torch.arange(3).view(1, 1, 3, 1, 1) - 0.1).expand(n, frames, 3, 8, 8).contiguous()


def test_i3d_loader_and_preprocessing_with_stand_in(tmp_path):
    from pyoco_lab.metrics import networks

    _save_scripted(_StandInI3D(), tmp_path / networks.I3D.filename)
    detector = networks.load_detector(networks.I3D, tmp_path)
    videos = _ramp_videos(5, 10, seed=0)
    features = networks.i3d_features(detector, videos, batch_size=2)
    as_uint8 = torch.round((videos + 1) * 127.5).clamp(0, 255)
    expected_frames = as_uint8.mean(dim=(2, 3, 4))
    expected_channels = as_uint8.mean(dim=(1, 3, 4))
    assert features.shape == (5, 13) and features.dtype == np.float64
    np.testing.assert_allclose(features[:, :10], expected_frames.numpy(), rtol=1e-6)
    np.testing.assert_allclose(features[:, 10:], expected_channels.numpy(), rtol=1e-6)
    # Range endpoints map exactly to 0 and 255.
    assert networks.videos_to_uint8(torch.tensor([-1.0, 1.0, -3.0, 2.0])).tolist() == [0, 255, 0, 255]


def test_c3d_and_inception_loaders_with_stand_ins(tmp_path):
    from pyoco_lab.metrics import networks

    torch.manual_seed(0)
    _save_scripted(_StandInC3D(), tmp_path / networks.C3D.filename)
    _save_scripted(_StandInInception(), tmp_path / networks.INCEPTION.filename)
    videos = _ramp_videos(3, 16, seed=1)
    probs = networks.c3d_probabilities(networks.load_detector(networks.C3D, tmp_path), videos, batch_size=2)
    assert probs.shape == (3, 101)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="16 frames"):
        networks.c3d_probabilities(networks.load_detector(networks.C3D, tmp_path), videos[:, :8])

    inception = networks.load_detector(networks.INCEPTION, tmp_path)
    frames = networks.inception_frame_features(inception, videos, batch_size=2)
    as_uint8 = torch.round((videos + 1) * 127.5).clamp(0, 255)
    # One row per frame, in (video, frame) order.
    np.testing.assert_allclose(frames, as_uint8.mean(dim=(3, 4)).reshape(48, 3).numpy(), rtol=1e-6)


def test_missing_files_are_skipped_by_name_and_wrong_files_raise(tmp_path):
    from pyoco_lab.metrics import networks

    _save_scripted(_StandInI3D(), tmp_path / networks.I3D.filename)
    real, generated = _ramp_videos(12, 16, seed=2), _ramp_videos(12, 16, seed=3)
    values, skipped = networks.standard_metrics(real, generated, directory=tmp_path, progress=False)
    assert set(values) == {"FVD"} and values["FVD"] > 0
    assert set(skipped) == {"IS", "FID-frame"}
    assert "c3d_ucf101.pt" in skipped["IS"] and str(tmp_path) in skipped["IS"]
    assert "inception-2015-12-05.pt" in skipped["FID-frame"]
    same, _ = networks.standard_metrics(real, real, directory=tmp_path, progress=False)
    assert abs(same["FVD"]) < 1e-6 * values["FVD"]

    # A state dict under the TorchScript name is refused with the fix, never half-used.
    torch.save(_StandInI3D().state_dict(), tmp_path / networks.I3D.filename)
    with pytest.raises(ValueError, match="not a TorchScript file"):
        networks.load_detector(networks.I3D, tmp_path)
    with pytest.raises(FileNotFoundError, match="i3d_torchscript.pt"):
        networks.load_detector(networks.I3D, tmp_path / "nowhere")


# ----------------------------------------------------------------------------------------------------
# Lab classifier: caching and versioning (fast, synthetic), then sanity on real clips (slow)


class _MovingSquares(torch.utils.data.Dataset):
    """A square moving right or left over a textured background: two motion classes."""

    num_classes = 2
    class_names = ("right", "left")

    def __init__(self, n: int, frames: int = 4, size: int = 16):
        g = torch.Generator().manual_seed(n)
        self.items = []
        for i in range(n):
            background = torch.rand(3, size, size, generator=g) * 0.4 - 0.8
            clip = background.expand(frames, 3, size, size).clone()
            for t in range(frames):
                x = 2 + (t if i % 2 == 0 else frames - t)
                clip[t, :, 6:10, x : x + 4] = 0.9
            self.items.append({"video": clip, "label": i % 2})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_lab_classifier_trains_caches_atomically_and_refuses_other_versions(tmp_path, monkeypatch):
    from pyoco_lab.metrics import lab

    dataset = _MovingSquares(16)
    recipe = lab.LabTraining(steps=3, batch_size=8)
    monkeypatch.setattr(lab, "EmbeddedVideoDataset", lambda **kw: dataset)
    first = lab.lab_classifier(16, 4, root=tmp_path, cache_dir=tmp_path, recipe=recipe, progress=False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].startswith(f"lab-classifier-v{lab.LAB_CLASSIFIER_VERSION}-r16-f4-")
    assert files[0].endswith(".safetensors")  # no temporary file left behind
    again = lab.lab_classifier(16, 4, root=tmp_path, cache_dir=tmp_path, recipe=recipe, progress=False)
    for (name, a), (_, b) in zip(first.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name

    features = lab.lab_features(again, torch.stack([dataset[i]["video"] for i in range(16)]))
    assert features.video.shape == (16, 8 * again.width) and features.frame.shape == (64, 4 * again.width)
    np.testing.assert_allclose(features.probabilities.sum(1), 1.0, atol=1e-9)

    monkeypatch.setattr(lab, "LAB_CLASSIFIER_VERSION", lab.LAB_CLASSIFIER_VERSION + 1)
    with pytest.raises(ValueError, match="delete the file to retrain"):
        lab.load_lab_classifier(tmp_path / files[0])


@pytest.mark.slow
def test_lab_metrics_are_meaningful_on_real_embedded_clips(tmp_path):
    """FVD-lab is small for held-out real clips, grows with noise, and punishes shuffled and frozen clips."""
    from pyoco_lab import data
    from pyoco_lab.metrics import lab

    torch.set_num_threads(min(2, torch.get_num_threads()))
    data.build_embedded_dataset(resolutions=(32,), progress=False)  # no-op when already built
    frames = 8  # the quick preset's clip length
    classifier = lab.lab_classifier(32, frames, cache_dir=tmp_path, progress=False)
    train = data.EmbeddedVideoDataset(resolution=32, split="train", num_frames=frames)
    test = data.EmbeddedVideoDataset(resolution=32, split="test", num_frames=frames)
    reference = lab.lab_features(classifier, train)
    real = torch.stack([test[i]["video"] for i in range(len(test))])
    g = torch.Generator().manual_seed(0)

    def score(videos):
        return lab.lab_metrics(reference, lab.lab_features(classifier, videos))

    base = score(real)
    noisy = [score((real + s * torch.randn(real.shape, generator=g)).clamp(-1, 1)) for s in (0.1, 0.2, 0.4)]
    shuffled = score(real[:, torch.randperm(frames, generator=g)])
    frozen = score(real[:, :1].expand_as(real).contiguous())
    print(
        "\nsanity FVD-lab: real", round(base["FVD-lab"], 2),
        "noise", [round(n["FVD-lab"], 2) for n in noisy],
        "shuffled", round(shuffled["FVD-lab"], 2), "frozen", round(frozen["FVD-lab"], 2),
        "\nsanity FD-frame-lab: real", round(base["FD-frame-lab"], 3),
        "noise", [round(n["FD-frame-lab"], 3) for n in noisy],
        "\nsanity IS-lab: real", round(base["IS-lab"], 3), "noise", [round(n["IS-lab"], 3) for n in noisy],
    )  # fmt: skip
    fvd = [base["FVD-lab"]] + [n["FVD-lab"] for n in noisy]
    assert all(a < b for a, b in zip(fvd, fvd[1:], strict=False)), fvd
    # "Clearly worse": the two temporal corruptions are at least 3x the held-out real score.
    assert shuffled["FVD-lab"] > 3 * base["FVD-lab"]
    assert frozen["FVD-lab"] > 3 * base["FVD-lab"]
    fd = [base["FD-frame-lab"]] + [n["FD-frame-lab"] for n in noisy]
    assert all(a < b for a, b in zip(fd, fd[1:], strict=False)), fd


# ----------------------------------------------------------------------------------------------------
# evaluate: sampling with the run's prior, the table, and eval.json


def test_sample_videos_is_seeded_follows_the_prior_and_passes_labels():
    from pyoco_lab.noise import NoisePrior

    sigma_data = 0.5
    seen_labels = []

    def gaussian_denoiser(x, sigma, class_labels=None):
        # Exact denoiser of N(0, σd² I) data: E[x0 | x] = x·σd²/(σ²+σd²).
        seen_labels.append(class_labels)
        s = sigma.view(-1, *([1] * (x.ndim - 1)))
        return x * sigma_data**2 / (s**2 + sigma_data**2)

    prior = NoisePrior("progressive", 2.0)
    options = dict(sampler="euler", num_steps=4, batch_size=3, seed=5, progress=False)
    a = sample_videos(gaussian_denoiser, prior, (4, 3, 4, 4), 5, num_classes=2, **options)
    b = sample_videos(gaussian_denoiser, prior, (4, 3, 4, 4), 5, num_classes=2, **options)
    assert a.shape == (5, 4, 3, 4, 4) and torch.equal(a, b)
    assert seen_labels[0].tolist() == [0, 1, 0] and seen_labels[-1].tolist() == [1, 0]
    # The sampler maps prior noise through a per-sample linear ODE, so frame correlation survives:
    # progressive alpha = 2 gives neighbouring frames correlation 2/√5 ≈ 0.89 in the noise.
    c = sample_videos(
        gaussian_denoiser, prior, (2, 1, 16, 16), 64, sampler="euler", num_steps=4, progress=False
    )
    corr = torch.corrcoef(torch.stack([c[:, 0].flatten(), c[:, 1].flatten()]))[0, 1]
    assert abs(float(corr) - 2 / 5**0.5) < 0.05  # 16,384 pairs: standard error ~0.002


def test_eval_json_accumulates_settings_and_table_lists_skips(tmp_path):

    row = {"FVD-lab": 1.5, "frame-cosine": 0.9}
    first = {
        "generated": row,
        "real-test": row,
        "skipped": {"FVD": "FVD skipped: i3d_torchscript.pt not found"},
    }
    store_entry(tmp_path / "eval.json", "heun-18steps-n8-seed0", first)
    store_entry(tmp_path / "eval.json", "euler-4steps-n8-seed0", first)
    import json

    stored = json.loads((tmp_path / "eval.json").read_text())
    assert set(stored) == {"heun-18steps-n8-seed0", "euler-4steps-n8-seed0"}
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]  # no temporary file left behind
    table = format_table(first)
    assert "FVD-lab" in table and "i3d_torchscript.pt" in table and "FID-frame " not in table


def test_reference_features_are_cached_beside_the_classifier(tmp_path):
    torch.manual_seed(0)
    classifier = lab.LabClassifier(num_classes=3, width=4)
    clips = torch.rand(5, 4, 3, 16, 16) * 2 - 1
    assert lab.cached_lab_features(classifier, clips, "train").video.shape[0] == 5  # no file: computed
    classifier.cache_path = tmp_path / "lab-classifier-test.safetensors"
    first = lab.cached_lab_features(classifier, clips, "train")
    stored = list(tmp_path.glob("*-train-n5-features.npz"))
    assert len(stored) == 1
    second = lab.cached_lab_features(classifier, clips * 0, "train")  # served from the file, not recomputed
    np.testing.assert_array_equal(first.video, second.video)
    np.testing.assert_array_equal(first.probabilities, second.probabilities)


def test_sample_videos_passes_stochastic_options_with_prior_churn():
    from pyoco_lab.noise import NoisePrior

    def gaussian(x, sigma):  # the ideal denoiser of N(0, 0.5²) data
        sigma = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        return x * 0.25 / (0.25 + sigma**2)

    prior, shape = NoisePrior("progressive", 2.0), (4, 1, 4, 4)
    kwargs = dict(sampler="stochastic", num_steps=8, seed=3, progress=False)
    heun = sample_videos(gaussian, prior, shape, 3, sampler="heun", num_steps=8, seed=3, progress=False)
    no_churn = sample_videos(gaussian, prior, shape, 3, sampler_options={"s_churn": 0.0}, **kwargs)
    churned = sample_videos(
        gaussian, prior, shape, 3, sampler_options={"s_churn": 20.0, "step": "rk3"}, **kwargs
    )
    again = sample_videos(
        gaussian, prior, shape, 3, sampler_options={"s_churn": 20.0, "step": "rk3"}, **kwargs
    )
    torch.testing.assert_close(no_churn, heun)
    assert not torch.allclose(churned, heun)
    torch.testing.assert_close(churned, again)  # seeded churn noise


def test_reference_statistics_are_computed_once_per_weights_and_real_set(tmp_path):
    from pyoco_lab.metrics import networks

    _save_scripted(_StandInI3D(), tmp_path / networks.I3D.filename)
    _save_scripted(_StandInInception(), tmp_path / networks.INCEPTION.filename)
    real, generated = _ramp_videos(12, 16, seed=2), _ramp_videos(12, 16, seed=3)
    cache, key = tmp_path / "cache", {"dataset": "embedded", "split": "train", "clip_seed": 0, "count": 12}
    calls = []

    def load():
        calls.append(1)
        return real

    kwargs = dict(directory=tmp_path, progress=False, reference_cache=cache, reference_key=key)
    first, _ = networks.standard_metrics(load, generated, **kwargs)
    assert len(calls) == 1 and len(list(cache.glob("reference-*.npz"))) == 2  # FVD and FID-frame
    plain, _ = networks.standard_metrics(real, generated, directory=tmp_path, progress=False)
    assert first == pytest.approx(plain)  # the cache changes nothing but the cost
    again, _ = networks.standard_metrics(lambda: pytest.fail("real clips reloaded"), generated, **kwargs)
    assert again == first
    # another real set (or other weights) is another entry
    networks.standard_metrics(load, generated, **{**kwargs, "reference_key": {**key, "clip_seed": 1}})
    assert len(calls) == 2 and len(list(cache.glob("reference-*.npz"))) == 4
