"""Reading and writing what the figure notebooks produce: ``figures/<notebook>/results.json`` + files.

Every notebook ends with :func:`save_results`; :mod:`pyoco_lab.report` reads them back.
Writes are atomic (temporary file + ``os.replace``) so a crash never leaves a half-written file
in place of a good one.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from plotly.offline import get_plotlyjs

from pyoco_lab.fileio import atomic_write_text, read_json
from pyoco_lab.noise import alpha_name

RESULTS_FILE = "results.json"


def to_jsonable(value: Any) -> Any:
    """Tensors, numpy values, tuples and non-finite floats -> plain JSON (inf as "inf", NaN as null)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    if isinstance(value, Path):
        return str(value)
    return value


def save_results(figures_dir: str | os.PathLike, notebook: str, preset: str, results: dict) -> Path:
    """Write ``figures_dir/results.json`` = {notebook, preset, **results} atomically."""
    payload = {"notebook": notebook, "preset": preset, **to_jsonable(results)}
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_text(Path(figures_dir) / RESULTS_FILE, text + "\n")


def load_results(figures_dir: str | os.PathLike) -> dict[str, dict]:
    """{notebook stem: results} for every ``figures_dir/<stem>/results.json``, in notebook order."""
    root = Path(figures_dir)
    found = {}
    for path in sorted(root.glob(f"[0-9][0-9]_*/{RESULTS_FILE}")):
        found[path.parent.name] = read_json(path, "notebook results")
    return found


PLOTLY_JS = "plotly.min.js"


def save_plotly_html(fig, path: str | os.PathLike) -> Path:
    """A plotly figure as an interactive HTML file that works offline.

    plotly.js (~4 MB) is written once as ``figures/plotly.min.js`` (the parent of the notebook's
    folder) and referenced relatively, instead of being inlined into every HTML file.
    """
    path = Path(path)
    shared = path.parent.parent / PLOTLY_JS
    if not shared.exists():
        atomic_write_text(shared, get_plotlyjs())
    return atomic_write_text(path, fig.to_html(include_plotlyjs=f"../{PLOTLY_JS}", full_html=True))


def alpha_key(alpha: float) -> str:
    """The JSON key of an alpha: '0', '0.5', '2', 'inf'."""
    return alpha_name(alpha)
