"""Sentences the docs once said that the lab no longer does (issue #43 item 5): each must stay gone from
README.md, docs/ and the notebooks' sources, or a reader is told something false."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (a false claim, what is true instead)
STALE = [
    ("needs a video run of `pyoco-lab train`", "the explorer's Generate lists the shipped α zoo first"),
    ("trains a 1-step quick video run", "the browser test generates with a shipped zoo model"),
    ("with trained `quick` runs, *Generate*", "Generate samples the shipped zoo without training"),
    ("is an image model: finetune a video run from it first", "the α zoo ships video models"),
    ("/generated/NAME/generated", "a shipped model's videos go to runs/generated/NAME/<prior>-..."),
]


def _texts() -> dict[Path, str]:
    paths = [
        REPO / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "notebooks").glob("*.py")),
    ]
    return {path: path.read_text() for path in paths}


def test_no_doc_repeats_a_claim_the_lab_no_longer_holds():
    texts = _texts()
    assert len(texts) > 10  # README, the docs and the notebook sources were found
    found = [
        f"{path.relative_to(REPO)}: {claim!r} ({truth})"
        for path, text in texts.items()
        for claim, truth in STALE
        if claim in text
    ]
    assert not found, "stale claims: " + "; ".join(found)
