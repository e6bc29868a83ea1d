"""Evaluation: an evaluation request -> scores of a run's samples beside real data, keyed and cached.

``keys`` (what decides an evaluation's numbers, ``eval.json``), ``references`` (the real sets and the
embedded data's clip scores), ``pipeline`` (one request, one flow, a video and an image scorer),
``controls`` (the metric controls scored like a generated set), ``table`` (the printed table). The pure
measures themselves live in :mod:`pyoco_lab.metrics`; sampling in :mod:`pyoco_lab.sampling`.
"""

from pyoco_lab.evaluation.controls import evaluate_controls
from pyoco_lab.evaluation.keys import (
    EVAL_FILE,
    KEY_FORMAT,
    EvaluationKey,
    EvaluationRequest,
    cached_evaluation,
    evaluation_key,
    evaluation_parts,
    key_name,
)
from pyoco_lab.evaluation.pipeline import (
    ImageScorer,
    VideoScorer,
    evaluate,
    evaluate_image_run,
    evaluate_run,
)
from pyoco_lab.evaluation.references import real_datasets, subset_clips
from pyoco_lab.evaluation.table import format_table

__all__ = [
    "EVAL_FILE",
    "KEY_FORMAT",
    "EvaluationKey",
    "EvaluationRequest",
    "ImageScorer",
    "VideoScorer",
    "cached_evaluation",
    "evaluate",
    "evaluate_controls",
    "evaluate_image_run",
    "evaluate_run",
    "evaluation_key",
    "evaluation_parts",
    "format_table",
    "key_name",
    "real_datasets",
    "subset_clips",
]
