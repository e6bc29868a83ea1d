"""The report: ``figures/SUMMARY.md`` rendered from each notebook's ``results.json``.

``summary`` (the whole file, section order, run times), ``premise`` (sections 01-03), ``studies``
(04-06), ``videos`` (07-08), ``common`` (the paper's numbers and the cells every section prints). It
reads results and applies the verdict rules (``analysis.verdict_rules``, ``stats``); it never imports
the run planner (``analysis.experiments``).
"""

from pyoco_lab.report.common import PAPER
from pyoco_lab.report.premise import image_quality_lines
from pyoco_lab.report.summary import SUMMARY_FILE, render_section, render_summary, write_summary

__all__ = [
    "PAPER",
    "SUMMARY_FILE",
    "image_quality_lines",
    "render_section",
    "render_summary",
    "write_summary",
]
