"""Intervals and the verdict rule: the one home of "how sure are we" for every table and figure.

Every comparison the lab reports carries its spread. A condition measured with several seeds gets a
Student-t 95% interval over the seeds' values; a condition measured once gets the bootstrap interval of
that one evaluation (resampling the generated clips, ``metrics.lab.lab_metrics``'s ``*-ci``), which shows
sampling noise but not training noise, and says so in its ``method``.

The verdict rule (:func:`verdict`) is deliberately conservative: a claim "A is better than B" is called
"agrees" only when the interval of the paired seed differences (same seeds, so the same data order and
sampling noise) lies entirely on the claimed side of zero, "does not agree" when it lies entirely on the
other side, and "inconclusive" otherwise. Unpaired values (one seed, or different seed sets) fall back to
"the two intervals do not overlap".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
AGREES, DISAGREES, INCONCLUSIVE = "agrees", "does not agree", "inconclusive"


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided interval; ``low``/``high`` are ±inf when the data cannot bound it."""

    mean: float
    low: float
    high: float
    n: int
    method: str  # "t over 3 seeds", "bootstrap over 256 clips", "single value"

    def overlaps(self, other: Interval) -> bool:
        return not (self.high < other.low or other.high < self.low)

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def format(self, digits: int = 3) -> str:
        """'0.123 [0.100, 0.150]' (or '0.123 [n = 1, no interval]')."""
        if not self.bounded:
            return f"{self.mean:.{digits}f} [no interval: {self.method}]"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def record(self) -> dict:
        """JSON-ready (±inf as strings, via ``results.to_jsonable``)."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "method": self.method}

    @classmethod
    def from_record(cls, record: Mapping) -> Interval:
        return cls(
            float(record["mean"]),
            float(record["low"]),
            float(record["high"]),
            int(record["n"]),
            str(record["method"]),
        )


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE, *, unit: str = "seeds") -> Interval:
    """Student-t interval of the mean of ``values`` (independent runs, e.g. seeds); unbounded for n = 1."""
    x = np.asarray([float(v) for v in values], dtype=np.float64)
    if x.size == 0:
        raise ValueError("an interval needs at least one value")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"values must be finite, got {x.tolist()}")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, -math.inf, math.inf, 1, f"single value (1 of {unit})")
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, int(x.size), f"t over {x.size} {unit}")


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    samples: np.ndarray,
    *,
    num_resamples: int = 200,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    unit: str = "clips",
) -> Interval:
    """``statistic(samples)`` ± z · (bootstrap standard error), resampling the rows of ``samples``.

    Why not percentiles: a Fréchet distance of a resample is biased upwards (repeated rows shrink the
    covariance's effective rank), so the resamples sit above the estimate and a percentile interval would
    not even contain it. Their *spread* still estimates the estimator's sampling spread at this N, so the
    interval is centred on the estimate with the bootstrap's standard error (the normal bootstrap interval).
    """
    samples = np.asarray(samples)
    n = len(samples)
    if n < 2:
        raise ValueError(f"a bootstrap needs at least 2 samples, got {n}")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(samples[rng.integers(0, n, n)]) for _ in range(num_resamples)])
    estimate = float(statistic(samples))
    half = float(scipy_stats.norm.ppf(0.5 + confidence / 2) * values.std(ddof=1))
    return Interval(estimate, estimate - half, estimate + half, n, f"bootstrap over {n} {unit}")


def condition_interval(per_seed: Sequence[float], single_ci: Sequence[float] | None = None) -> Interval:
    """The interval of one condition: t over its seeds, or (one seed) that evaluation's bootstrap interval."""
    if len(per_seed) == 1 and single_ci is not None and all(math.isfinite(float(v)) for v in single_ci):
        low, high = float(single_ci[0]), float(single_ci[1])
        value = float(per_seed[0])
        return Interval(value, min(low, value), max(high, value), 1, "bootstrap of 1 seed's clips")
    return t_interval(per_seed)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Interval:
    """Interval of mean(a − b) over paired values (a[i] and b[i] share seed i)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return t_interval([float(x) - float(y) for x, y in zip(a, b, strict=True)], unit="paired seeds")


def verdict(
    claimed_better: Interval | Sequence[float],
    claimed_worse: Interval | Sequence[float],
    *,
    lower_is_better: bool = True,
) -> tuple[str, str]:
    """("agrees" | "does not agree" | "inconclusive", why) for the claim "the first is better".

    Sequences of per-seed values of equal length (≥ 2) are compared paired; anything else by interval
    overlap. Overlapping intervals never give a verdict.
    """
    paired = (
        not isinstance(claimed_better, Interval)
        and not isinstance(claimed_worse, Interval)
        and len(claimed_better) == len(claimed_worse) >= 2
    )
    if paired:
        diff = paired_difference(claimed_better, claimed_worse)
        why = f"paired difference {diff.format()} ({diff.method})"
        # "better" is a negative difference when lower is better, a positive one otherwise
        low, high = (diff.low, diff.high) if lower_is_better else (-diff.high, -diff.low)
        if high < 0:
            return AGREES, why
        if low > 0:
            return DISAGREES, why
        return INCONCLUSIVE, why
    better = claimed_better if isinstance(claimed_better, Interval) else t_interval(claimed_better)
    worse = claimed_worse if isinstance(claimed_worse, Interval) else t_interval(claimed_worse)
    why = f"{better.format()} vs {worse.format()}"
    if not better.bounded or not worse.bounded or better.overlaps(worse):
        return INCONCLUSIVE, why + (" (intervals overlap)" if better.bounded and worse.bounded else "")
    first_lower = better.high < worse.low
    return (AGREES if first_lower == lower_is_better else DISAGREES), why


def all_agree(verdicts: Sequence[str]) -> str:
    """A claim made of parts: agrees only if every part does; does not agree if any part does not."""
    if any(v == DISAGREES for v in verdicts):
        return DISAGREES
    return AGREES if verdicts and all(v == AGREES for v in verdicts) else INCONCLUSIVE


def compare_records(
    claimed_better: Mapping, claimed_worse: Mapping, *, lower_is_better: bool = True
) -> tuple[str, str]:
    """:func:`verdict` of two condition records (``Interval.record()`` + ``"values"`` per seed).

    Records that name their ``"seeds"`` are paired on the seeds both hold (≥ 2; a condition a study did not
    finish keeps the seeds it has); records without seeds are paired when they hold the same number (≥ 2)
    of values, taken to be the same seeds in the same order. By interval overlap otherwise.
    """
    a, b = claimed_better.get("values"), claimed_worse.get("values")
    seeds_a, seeds_b = claimed_better.get("seeds"), claimed_worse.get("seeds")
    if a is not None and b is not None and seeds_a is not None and seeds_b is not None:
        common = [seed for seed in seeds_a if seed in seeds_b]
        if len(common) >= 2:
            outcome, why = verdict(
                [a[list(seeds_a).index(seed)] for seed in common],
                [b[list(seeds_b).index(seed)] for seed in common],
                lower_is_better=lower_is_better,
            )
            return outcome, f"{why}, seeds {', '.join(map(str, common))}"
    elif a is not None and b is not None and len(a) == len(b) >= 2:
        return verdict(list(a), list(b), lower_is_better=lower_is_better)
    return verdict(
        Interval.from_record(claimed_better),
        Interval.from_record(claimed_worse),
        lower_is_better=lower_is_better,
    )


def format_record(record: Mapping, digits: int = 2) -> str:
    """'12.30 [10.10, 14.50]' of a condition record (see :func:`compare_records`)."""
    return Interval.from_record(record).format(digits)


def seeds_for_power(
    spread: float,
    difference: float,
    *,
    power: float = 0.8,
    confidence: float = CONFIDENCE,
    max_seeds: int = 1000,
) -> int:
    """The fewest seeds for which the verdict rule's paired t interval (``confidence``, two-sided) lies on
    one side of zero with probability ``power``, when the true paired difference is ``difference`` and the
    seeds' paired differences scatter with standard deviation ``spread``: the power of a one-sample t-test
    on the paired differences, from the noncentral t distribution (noncentrality difference / (spread /
    sqrt(n)); Cohen 1988, ch. 2). The planning step of a pre-registered study: ``spread`` is measured on the
    seeds already run, ``difference`` is the smallest effect worth finding. Raises ValueError when even
    ``max_seeds`` do not reach ``power``."""
    if spread <= 0 or difference == 0 or not 0 < power < 1:
        raise ValueError(
            f"need spread > 0, difference != 0 and 0 < power < 1, got {spread}, {difference}, {power}"
        )
    for n in range(2, max_seeds + 1):
        df = n - 1
        critical = scipy_stats.t.ppf(1 - (1 - confidence) / 2, df)
        shift = abs(difference) / (spread / math.sqrt(n))
        reached = scipy_stats.nct.sf(critical, df, shift) + scipy_stats.nct.cdf(-critical, df, shift)
        if reached >= power:
            return n
    raise ValueError(
        f"{max_seeds} seeds do not reach power {power} for a difference of {difference} at spread {spread}"
    )
