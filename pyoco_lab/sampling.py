"""Drawing videos from any denoiser with a noise prior: the one sampling loop of the lab.

:func:`sample_videos` is what evaluations, sweeps, ``pyoco-lab generate``, the notebooks and the explorer
call: seeded batches of the prior's noise (i.i.d., mixed eq. 3 or progressive eq. 4 of the paper)
solved by an EDM sampler (:func:`pyoco_lab.edm.sample`: Euler, Heun, the stochastic sampler of EDM
Algorithm 2 whose churn noise follows the same prior, DEIS), optionally re-initialised in the low band
(:mod:`pyoco_lab.reinit`, FreeInit / FreqPrior). Like k-diffusion's samplers it takes any callable
``denoiser(x, sigma, **cond)``; it loads nothing. A sampler is one value, :class:`SamplerSpec` (kind,
steps, options): what the presets, the training config's periodic samples (``TrainConfig.sampler_spec``)
and the commands' ``--sampler`` flags describe.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from pyoco_lab import devices, edm
from pyoco_lab.progress import tqdm
from pyoco_lab.reinit import Reinit, sample_reinit

_STEP_NAMES = {"euler": "Euler", "heun": "Heun", "rk3": "DEIS 3kutta", "3kutta": "DEIS 3kutta"}


@dataclass(frozen=True)
class SamplerSpec:
    """How a preset draws samples: an ``edm.SAMPLERS`` kind, its steps and options (``Settings.sampler``).

    ``step`` and the churn values (EDM Alg. 2: S_churn, S_tmin, S_tmax, S_noise) apply to "stochastic",
    ``order``/``variant`` to "deis". :meth:`options` is what ``sample_videos``, ``evaluate_run`` and
    ``edm.sample`` take, and only the options of the kind enter it (so the ``eval.json`` key of a Heun
    evaluation has none).
    """

    kind: str = "heun"
    steps: int = 18
    step: str = "heun"  # ODE step of "stochastic" ("rk3": DEIS 3kutta, the paper's A.3)
    order: int = 3  # DEIS multistep order ("deis")
    variant: str = "tab"  # DEIS "tab" / "rhoab" ("deis")
    s_churn: float = 0.0
    s_tmin: float = 0.0
    s_tmax: float = math.inf
    s_noise: float = 1.0

    def __post_init__(self):
        if self.kind not in edm.SAMPLERS:
            raise ValueError(f"unknown sampler {self.kind!r}; choose one of {', '.join(edm.SAMPLERS)}")
        if int(self.steps) < 1:
            raise ValueError(f"sampler steps must be >= 1, got {self.steps}")
        if self.step not in edm.STEPS:
            raise ValueError(f"unknown ODE step {self.step!r}; choose one of {', '.join(edm.STEPS)}")
        if self.order not in (1, 2, 3) or self.variant not in ("tab", "rhoab"):
            raise ValueError(
                f"DEIS needs order 1-3 and variant tab/rhoab, got {self.order}, {self.variant!r}"
            )
        if self.s_churn < 0 or self.s_noise <= 0 or self.s_tmin > self.s_tmax:
            raise ValueError(
                f"churn needs S_churn >= 0, S_noise > 0 and S_tmin <= S_tmax, got {self.s_churn}, "
                f"{self.s_noise}, {self.s_tmin}, {self.s_tmax}"
            )

    @classmethod
    def coerce(cls, value) -> SamplerSpec:
        """A SamplerSpec, or one from a mapping of its fields (e.g. a papermill YAML parameter)."""
        if isinstance(value, SamplerSpec):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise ValueError(f"unknown sampler field(s) {', '.join(unknown)}")
            return cls(**{k: float(v) if k.startswith("s_") else v for k, v in value.items()})
        raise ValueError(
            f"sampler must be a SamplerSpec or a mapping of its fields (kind, steps, step, s_churn, ...), "
            f"got {value!r}"
        )

    def options(self) -> dict[str, Any]:
        """``sampler_options`` for ``evaluate_run`` / ``edm.sample`` (the options of this kind only)."""
        if self.kind == "stochastic":
            return {
                "step": self.step,
                "s_churn": float(self.s_churn),
                "s_tmin": float(self.s_tmin),
                "s_tmax": float(self.s_tmax),
                "s_noise": float(self.s_noise),
            }
        if self.kind == "deis":  # the same options as `pyoco-lab evaluate --sampler deis`: one key per choice
            return (
                {"order": self.order}
                if self.variant == "tab"
                else {"order": self.order, "variant": self.variant}
            )
        return {}

    def describe(self) -> str:
        """One line for tables and figures, e.g. "stochastic DEIS 3kutta, 25 steps (S_churn 40, ...)"."""
        if self.kind == "stochastic":
            churn = (
                f"S_churn {self.s_churn:g}, S_tmin {self.s_tmin:g}, S_tmax {self.s_tmax:g}, "
                f"S_noise {self.s_noise:g}"
            )
            return f"stochastic {_STEP_NAMES[self.step]} (EDM Alg. 2), {self.steps} steps ({churn})"
        if self.kind == "deis":
            return f"DEIS {self.variant} order {self.order} (deterministic), {self.steps} steps"
        name = {"heun": "Heun (EDM Alg. 1)", "rk3": "DEIS 3kutta (deterministic)"}.get(self.kind, "Euler")
        return f"{name}, {self.steps} steps"

    def record(self) -> dict[str, Any]:
        """JSON-ready: kind, steps, options and the one-line description (what results.json stores)."""
        return {
            "kind": self.kind,
            "steps": int(self.steps),
            "options": self.options(),
            "description": self.describe(),
        }


@torch.no_grad()
def sample_videos(
    denoiser,
    prior,
    shape: tuple[int, int, int, int],
    num_samples: int,
    *,
    sampler: str = "heun",
    num_steps: int = 18,
    num_classes: int = 0,
    batch_size: int = 16,
    seed: int = 0,
    device=None,
    progress: bool = True,
    sampler_options: dict | None = None,
    reinit: Reinit | None = None,
) -> torch.Tensor:
    """``num_samples`` videos (N, F, C, H, W) in [−1, 1] on CPU, drawn batch by batch with ``prior``'s noise.

    ``shape`` is (F, C, H, W). Class-conditional models get balanced labels (sample i has class i mod K).
    The stochastic sampler's fresh noise follows the same prior. Seeded: the same call gives the same videos.
    ``sampler_options`` go to :func:`pyoco_lab.edm.sample` (e.g. ``s_churn``/``step`` for "stochastic",
    ``order``/``variant`` for "deis"). With ``reinit``, each batch is re-initialised in the low band
    (:func:`pyoco_lab.reinit.sample_reinit`, FreeInit / FreqPrior) with fresh noise of ``prior`` from a stream
    of its own, so the first pass is the plain sample of the same seed.
    """
    # On the denoiser's device unless told otherwise (devices: one rule), TF32 / cuDNN autotuning on CUDA.
    device = devices.device_of(denoiser) if device is None else torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    # Churn noise of the stochastic sampler is drawn where x lives, from its own seeded stream.
    churn = torch.Generator(device=device).manual_seed(seed + 1)
    fresh = torch.Generator().manual_seed(seed + 2)  # re-initialisation's high band
    out = []
    # Progress per sampler step (a batch of a large model takes minutes); per batch when re-initialising.
    batches = range(0, num_samples, batch_size)
    per_step = reinit is None
    bar = tqdm(
        total=len(batches) * (num_steps if per_step else 1),
        desc="sampling",
        unit="step" if per_step else "batch",
        disable=not progress,
    )
    for start in batches:
        n = min(batch_size, num_samples - start)
        noise = prior.sample((n, *shape), generator=generator).to(device)
        labels = (torch.arange(start, start + n) % num_classes).to(device) if num_classes else None
        cond = {"class_labels": labels} if labels is not None else {}
        options = dict(sampler_options or {})
        if sampler == "stochastic":
            options["noise_sampler"] = edm.prior_noise_sampler(prior, generator=churn)
        denoise = lambda x, s, cond=cond: denoiser(x, s, **cond)  # noqa: E731
        with devices.sampling_mode(device):
            if per_step:
                step_done = lambda i, x: bar.update(1)  # noqa: E731
                x0 = edm.sample(
                    denoise, noise, sampler=sampler, num_steps=num_steps, callback=step_done, **options
                )
            else:
                x0 = sample_reinit(
                    denoise,
                    noise,
                    lambda n=n: prior.sample((n, *shape), generator=fresh),
                    reinit,
                    sampler=sampler,
                    num_steps=num_steps,
                    **options,
                )
            if not per_step:
                bar.update(1)
        out.append(x0.float().clamp(-1, 1).cpu())
    bar.close()
    return torch.cat(out)
