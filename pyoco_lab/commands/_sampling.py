"""The sampler arguments shared by ``evaluate`` and ``generate`` (one home: same flags, same meaning)."""

from __future__ import annotations

import argparse

from pyoco_lab.edm import SAMPLERS
from pyoco_lab.reinit import Reinit
from pyoco_lab.sampling import SamplerSpec


def add_sampler_arguments(parser: argparse.ArgumentParser, *, sampler: str = "heun", steps: int = 18) -> None:
    parser.add_argument(
        "--sampler", choices=tuple(SAMPLERS), default=sampler, help=f"sampler (default: {sampler})"
    )
    parser.add_argument("--steps", type=int, default=steps, help=f"sampler steps (default: {steps})")
    stochastic = parser.add_argument_group(
        "stochastic sampler (EDM Alg. 2; the paper's UCF sampler: --sampler stochastic --churn-step rk3)"
    )
    stochastic.add_argument("--s-churn", type=float, default=0.0, help="S_churn (default 0: no churn)")
    stochastic.add_argument("--s-tmin", type=float, default=0.0, help="churn only for sigma >= S_tmin")
    stochastic.add_argument(
        "--s-tmax", type=float, default=float("inf"), help="churn only for sigma <= S_tmax"
    )
    stochastic.add_argument("--s-noise", type=float, default=1.0, help="S_noise (default 1)")
    stochastic.add_argument(
        "--churn-step",
        choices=("heun", "rk3"),
        default="heun",
        help="ODE step after churning (default: heun)",
    )
    parser.add_argument("--deis-order", type=int, choices=(1, 2, 3), default=3, help="DEIS order (default 3)")


def sampler_options(args: argparse.Namespace) -> dict:
    """``sampler_options`` of ``edm.sample`` from the parsed flags (only the chosen sampler's).

    The flags are checked here, naming the flag; the options are then :class:`SamplerSpec`'s, the one
    sampler value the presets and training configs use too.
    """
    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    if args.sampler == "stochastic" and (args.s_churn < 0 or args.s_noise <= 0):
        raise ValueError("--s-churn must be >= 0 and --s-noise > 0")
    spec = SamplerSpec(
        args.sampler,
        args.steps,
        step=args.churn_step,
        order=args.deis_order,
        s_churn=args.s_churn,
        s_tmin=args.s_tmin,
        s_tmax=args.s_tmax,
        s_noise=args.s_noise,
    )
    return spec.options()


def add_reinit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--reinit N`` and its filter: low-frequency noise re-initialisation of video clips (FreeInit)."""
    group = parser.add_argument_group(
        "low-frequency re-initialisation (FreeInit, Wu et al. 2024; variance kept as in FreqPrior, 2025)"
    )
    group.add_argument(
        "--reinit",
        type=int,
        default=1,
        metavar="N",
        help="sampling passes per clip, each starting from the last clip's inverted noise in the low band "
        "and fresh prior noise above it (default 1: none; FreeInit uses 3; each pass after the first costs a "
        "sampling pass and an inversion)",
    )
    group.add_argument(
        "--reinit-spatial-stop", type=float, default=0.25, help="low-pass spatial stop frequency d_s (0.25)"
    )
    group.add_argument(
        "--reinit-temporal-stop", type=float, default=0.25, help="low-pass temporal stop frequency d_t (0.25)"
    )


def reinit_options(args: argparse.Namespace) -> Reinit | None:
    """The parsed ``--reinit`` flags as a :class:`pyoco_lab.reinit.Reinit` (None for 1 pass: plain)."""
    spec = Reinit(args.reinit, args.reinit_spatial_stop, args.reinit_temporal_stop)
    return None if spec.iterations == 1 else spec
