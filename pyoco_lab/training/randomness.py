"""Reproducible randomness: every random draw of training step ``s`` comes from a generator seeded
by ``(seed, stream, s)``.

That is what makes resume exact by construction: a run killed after its checkpoint at step ``s``
and resumed replays the same data order, sigma, noise, label/text dropout and network dropout, and
on CPU ends bitwise identical to an uninterrupted run. The global RNG states are saved in each
checkpoint anyway (:func:`rng_state`), for code that draws from the global generators.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

# One stream per kind of draw, so adding a draw of one kind never shifts another.
(
    STREAM_DATA,
    STREAM_IMAGES,
    STREAM_SIGMA,
    STREAM_NOISE,
    STREAM_LABELS,
    STREAM_DROPOUT,
    STREAM_SAMPLES,
    STREAM_TEXT,
) = range(8)


def step_seed(seed: int, stream: int, step: int) -> int:
    # A fixed integer mix (not Python's salted hash) so seeds agree across processes and runs.
    return (seed * 1_000_003 + stream * 7_919 + step * 104_729) % (2**63 - 1)


def step_generator(seed: int, stream: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh generator for draw ``stream`` of step ``step``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(step_seed(seed, stream, step))
    return generator


def rng_state() -> dict[str, Any]:
    """The global torch / numpy / Python RNG states, as tensors and lists (``weights_only`` loadable)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
