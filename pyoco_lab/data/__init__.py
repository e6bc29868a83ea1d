"""Data: the embedded default dataset (real imagery shipped in PyPI packages) and UCF-101 via decord."""

from pyoco_lab.data.embedded import (
    CLASS_NAMES,
    EmbeddedBuildConfig,
    EmbeddedFramesDataset,
    EmbeddedVideoDataset,
    build_embedded_dataset,
    default_data_root,
    detect_shots,
    embedded_dir,
    load_manifest,
)
from pyoco_lab.data.prompts import UCF101_CLASSES, caption_templates, captions, class_phrase, ucf101_prompt

__all__ = [
    "CLASS_NAMES",
    "UCF101_CLASSES",
    "EmbeddedBuildConfig",
    "EmbeddedFramesDataset",
    "EmbeddedVideoDataset",
    "build_embedded_dataset",
    "caption_templates",
    "captions",
    "class_phrase",
    "default_data_root",
    "detect_shots",
    "embedded_dir",
    "load_manifest",
    "ucf101_prompt",
]
