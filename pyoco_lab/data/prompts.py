"""UCF-101 evaluation prompts and caption templates (Appendix A.2), shipped as package data.

The paper writes one sentence per UCF-101 class because some class names ("jump rope") describe an
object rather than a video; ``ucf101_prompt`` returns that sentence. ``captions`` fills the ten
templates used to caption categorical video datasets for text-conditional training.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

__all__ = [
    "UCF101_CLASSES",
    "caption_templates",
    "captions",
    "class_phrase",
    "ucf101_prompt",
    "ucf101_prompts",
]


@cache
def ucf101_prompts() -> dict[str, str]:
    """Class name (as in ``classInd.txt``) -> the paper's evaluation prompt, in class-index order."""
    text = resources.files(__package__).joinpath("ucf101_prompts.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["prompts"])


@cache
def caption_templates() -> tuple[str, ...]:
    """The ten templates of Appendix A.2, each containing the placeholder ``[class]``."""
    text = resources.files(__package__).joinpath("caption_templates.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


UCF101_CLASSES: tuple[str, ...] = tuple(ucf101_prompts())


def _lookup(class_name: str) -> str:
    prompts = ucf101_prompts()
    if class_name in prompts:
        return class_name
    # Tolerate "apply_eye_makeup", "applyeyemakeup" or "Apply Eye Makeup" for "ApplyEyeMakeup".
    folded = {re.sub(r"[^a-z]", "", name.lower()): name for name in prompts}
    key = re.sub(r"[^a-z]", "", class_name.lower())
    if key in folded:
        return folded[key]
    raise ValueError(
        f"unknown UCF-101 class {class_name!r}; use a name from classInd.txt such as 'ApplyEyeMakeup' "
        "(see pyoco_lab.data.UCF101_CLASSES)"
    )


def ucf101_prompt(class_name: str) -> str:
    """The paper's one-sentence prompt for a UCF-101 class, e.g. 'JumpRope' -> 'a person skipping ...'."""
    return ucf101_prompts()[_lookup(class_name)]


def class_phrase(class_name: str) -> str:
    """'ApplyEyeMakeup' -> 'apply eye makeup', 'pan-left' -> 'pan left': the [class] filler of a template."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[_\-]+", " ", class_name).split()
    return " ".join(word.lower() for word in words)


def captions(class_name: str) -> list[str]:
    """The ten templated captions of a class name (Appendix A.2), e.g. 'a man is kayaking.'."""
    if not class_name or not class_name.strip():
        raise ValueError("captions() needs a non-empty class name, e.g. 'Kayaking'")
    phrase = class_phrase(class_name)
    return [template.replace("[class]", phrase) for template in caption_templates()]
