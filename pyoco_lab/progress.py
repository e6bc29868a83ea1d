"""The lab's progress bar: ``tqdm.auto`` (widgets in JupyterLab, text in a terminal), or plain text when
``PYOCO_PROGRESS=text`` -- what ``pyoco-lab reproduce`` sets for the notebook kernels it streams to the
terminal, since a widget bar inside a headless kernel reaches no one."""

from __future__ import annotations

import os

if os.environ.get("PYOCO_PROGRESS") == "text":
    from tqdm.std import tqdm
else:
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
