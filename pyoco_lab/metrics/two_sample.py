"""Classifier two-sample test (C2ST): can a small network tell generated frames (or clips) from real ones?

Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests" (ICLR 2017): train a classifier on half of
the pooled, labelled samples (real = 0, generated = 1) and report its accuracy on the other half. If the
two distributions are the same, no classifier beats chance on held-out data: accuracy ≈ 0.5; the further
apart they are, the closer it gets to 1. Its interval is binomial (Clopper–Pearson) over the held-out
samples, so "indistinguishable at this N" means the interval contains 0.5.

Why beside the feature distances: it needs no feature network chosen in advance — the test learns
whatever tells the sets apart (noise, blur, wrong colours, flicker), from raw pixels. It sees only what
the held-out half can show, so it is a *lower bound* on how different the sets are; and it is a
detector, not a distance: two bad models can both score 1.0.

The classifier: a small CNN (two strided conv stages, global mean and spread pooling) on frames
(N, 3, H, W), or on clips (N, F, 3, H, W) with the frames stacked as channels together with their
differences, so it sees content and motion. Trained with AdamW for a fixed number of steps, seeded.
Each set is cut to the size of the smaller one, so chance is exactly 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy import stats as scipy_stats
from torch import nn

from pyoco_lab.stats import CONFIDENCE

STEPS = 200
BATCH_SIZE = 64
MIN_ITEMS = 8  # per set: fewer leaves a held-out half too small to say anything


class _TwoSampleNet(nn.Module):
    """Two strided conv stages (every pixel seen by the first 3×3 kernels), mean ⊕ spread pooling."""

    def __init__(self, channels: int, width: int = 24):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
        )
        self.head = nn.Linear(4 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(torch.cat([h.mean(dim=(2, 3)), h.std(dim=(2, 3))], dim=1))[:, 0]


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """Frames stay (N, 3, H, W); clips (N, F, 3, H, W) become (N, 3F + 3(F−1), H, W): frames ⊕ differences."""
    if x.ndim == 4:
        return x.float()
    if x.ndim == 5:
        clips = x.float()
        return torch.cat([clips.flatten(1, 2), (clips[:, 1:] - clips[:, :-1]).flatten(1, 2)], dim=1)
    raise ValueError(f"expected frames (N, 3, H, W) or clips (N, F, 3, H, W), got {tuple(x.shape)}")


def clopper_pearson(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial interval of a proportion."""
    alpha = 1 - confidence
    low = 0.0 if correct == 0 else float(scipy_stats.beta.ppf(alpha / 2, correct, total - correct + 1))
    high = (
        1.0 if correct == total else float(scipy_stats.beta.ppf(1 - alpha / 2, correct + 1, total - correct))
    )
    return low, high


def two_sample_test(
    real: torch.Tensor,
    generated: torch.Tensor,
    *,
    group_size: int = 1,
    seed: int = 0,
    steps: int = STEPS,
    device=None,
) -> dict:
    """{"accuracy", "ci95", "n_test", "n_train"}: held-out accuracy of a classifier real vs generated.

    Frames (N, 3, H, W) or clips (N, F, 3, H, W) in [−1, 1]; both sets must have the same shape per item.
    ``group_size`` > 1: the items come in consecutive groups (the frames of one clip) that go to the same
    half, so the test half never holds near-copies of items the classifier learned (which would let it
    recognise them rather than the distribution, and real-vs-real would beat chance).
    """
    if real.shape[1:] != generated.shape[1:]:
        raise ValueError(
            f"real items {tuple(real.shape[1:])} and generated {tuple(generated.shape[1:])} differ"
        )
    n = min(len(real), len(generated)) // group_size * group_size
    if n < MIN_ITEMS or n // group_size < 2:
        raise ValueError(
            f"a two-sample test needs at least {MIN_ITEMS} items (and 2 groups) per set, got {n} items"
        )
    generator = torch.Generator().manual_seed(seed)
    x = torch.cat([_as_images(real[:n]), _as_images(generated[:n])])
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    # Stratified: half of each set's groups to learn, the other half to judge (chance stays 0.5).
    per_set = n // group_size
    train, test = [], []
    for offset in (0, per_set):
        groups = torch.randperm(per_set, generator=generator) + offset
        rows = (groups[:, None] * group_size + torch.arange(group_size)[None, :]).flatten()
        train.append(rows[: per_set // 2 * group_size])
        test.append(rows[per_set // 2 * group_size :])
    train, test = torch.cat(train), torch.cat(test)
    torch.manual_seed(seed)
    device = torch.device(device or "cpu")
    net = _TwoSampleNet(x.shape[1]).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    net.train()
    for _ in range(steps):
        batch = train[torch.randint(0, len(train), (min(BATCH_SIZE, len(train)),), generator=generator)]
        loss = F.binary_cross_entropy_with_logits(net(x[batch].to(device)), y[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        predicted = torch.cat(
            [net(x[test[i : i + 256]].to(device)).cpu() > 0 for i in range(0, len(test), 256)]
        )
    correct = int((predicted.float() == y[test]).sum())
    low, high = clopper_pearson(correct, len(test))
    return {"accuracy": correct / len(test), "ci95": [low, high], "n_test": len(test), "n_train": len(train)}


def accuracy_record(result: dict) -> dict:
    """The JSON row form of :func:`two_sample_test`'s result (accuracy and its interval)."""
    return {"value": float(result["accuracy"]), "ci95": [float(v) for v in result["ci95"]]}


def indistinguishable(result: dict) -> bool:
    """Whether the interval contains chance (0.5): no evidence at this N that the sets differ."""
    low, high = result["ci95"]
    return bool(low <= 0.5 <= high)
