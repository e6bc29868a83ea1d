"""Pretrained models that ship with the lab, loaded by name and verified by hash.

PYoCo starts from a pretrained image diffusion model (Section 5; Table 5's "Image Diffusion" row),
so the lab ships its own: EMA weights made by ``pyoco-lab train --phase image`` with a recorded
recipe, exported into the package by ``pyoco-lab pretrained export``. It also ships an *alpha zoo*: video
finetunes of one image model with several noise priors (issue #24), so sample videos can be watched at
each alpha without training anything. A model is named
``pretrained:NAME`` wherever a run folder is accepted (``--init``, ``load_denoiser``, the
notebooks, the explorer)::

    pyoco_lab/weights/registry.json     name -> file, sha256, TrainConfig, recipe, measured quality
    pyoco_lab/weights/NAME.safetensors  the EMA weights (float32)

The sha256 is checked on every load: a corrupted or hand-edited file is refused with the command
that re-creates it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pyoco_lab import edm, provenance
from pyoco_lab.fileio import atomic_write_text, publish_file, read_json, sha256_file
from pyoco_lab.noise import NoisePrior
from pyoco_lab.training import networks
from pyoco_lab.training.config import RESUMABLE_CHANGES, TrainConfig, config_from_dict, config_to_dict

PREFIX = "pretrained:"
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
REGISTRY_FILE = "registry.json"
# A shipped model's name: a file name in WEIGHTS_DIR and the NAME of pretrained:NAME, so no prefix, no path.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# What ``--init auto`` matches a shipped image model on; the registry marks one default per combination.
DEFAULT_FIELDS = ("phase", "model", "resolution", "class_conditional", "text_encoders", "dataset")


@dataclass(frozen=True)
class PretrainedModel:
    """One shipped model: its file and hash, the config it was trained with, how, and how good it is."""

    name: str
    file: str
    sha256: str
    config: dict[str, Any]
    num_classes: int = 0
    recipe: dict[str, Any] = field(default_factory=dict)  # command, steps, seed, data, wall time, machine
    quality: dict[str, Any] = field(default_factory=dict)  # measured by notebook 02 (docs/pretrained.md)
    # A better model of the same architecture and resolution replaced this one as the default (``--init
    # auto``, the presets); it stays shipped for the committed results that name it.
    superseded_by: str | None = None
    # The one model of its kind (DEFAULT_FIELDS) that ``--init auto`` finetunes from: set only by an export
    # that asks (``--default``, ``--supersedes`` of the default), never by the order of names.
    default: bool = False
    # A video model's recorded sampling prior, when a sweep found it samples better with another prior than
    # it was trained with (issue #38): {"noise", "alpha", "chosen_by"}; generate and the explorer use it by
    # default, the training prior one flag or click away. Empty: the training prior.
    sampling: dict[str, Any] = field(default_factory=dict)

    @property
    def train_config(self) -> TrainConfig:
        return config_from_dict(self.config)

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file

    @property
    def sampling_prior(self) -> NoisePrior:
        """The prior this model samples with by default: the recorded one, else the training prior."""
        if not self.sampling:
            return self.train_config.prior
        return NoisePrior(self.sampling["noise"], float(self.sampling["alpha"]))


def is_pretrained(source: str | os.PathLike | None) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def recorded_sampling_prior(source: str | os.PathLike | None) -> NoisePrior | None:
    """The sampling prior a shipped video model records (issue #38), or None: not a shipped model, or it
    records none (it samples with its training prior). The one place ``generate``, Fig. 6
    (``experiments.shown_prior``) and the explorer's Generate read it; each offers the training prior
    one flag or click away."""
    if not is_pretrained(source):
        return None
    model = get(str(source))
    return model.sampling_prior if model.sampling else None


def registry(directory: Path | None = None) -> dict[str, PretrainedModel]:
    """Every shipped model by name (empty when the package ships none)."""
    path = (directory or WEIGHTS_DIR) / REGISTRY_FILE
    if not path.is_file():
        return {}
    return {name: PretrainedModel(name=name, **entry) for name, entry in read_json(path, "registry").items()}


def current_models(directory: Path | None = None, *, phase: str = "image") -> list[PretrainedModel]:
    """The shipped models of ``phase`` ("image": the image models finetunes start from; "video": the
    alpha zoo): the defaults, then the others no model supersedes, then the superseded ones (what menus
    list first)."""
    models = [m for m in registry(directory).values() if m.train_config.phase == phase]
    return sorted(models, key=lambda m: (not m.default, m.superseded_by is not None))


def shipped_run(config: TrainConfig, init: str | None, directory: Path | None = None) -> str | None:
    """``pretrained:NAME`` of the shipped video model trained with exactly ``config`` from ``init`` (a
    ``pretrained:NAME`` image model, or None from scratch) -- logging, checkpointing and sampling along the
    way aside -- else None: a run the lab need not train."""
    wanted = (_final_weights_fields(config), init_record(init) if init else None)
    for model in current_models(directory, phase="video"):
        if (_final_weights_fields(model.train_config), model.recipe.get("init")) == wanted:
            return PREFIX + model.name
    return None


def _final_weights_fields(config: TrainConfig) -> dict[str, Any]:
    """What decides the weights a run ends with: its config without how it logs, checkpoints or samples
    along the way (a zoo model exported from a run that kept every checkpoint is the same model)."""
    ignored = RESUMABLE_CHANGES - {"steps", "decay_steps"}
    return {k: v for k, v in config_to_dict(config).items() if k not in ignored}


def inversion_models(directory: Path | None = None) -> list[PretrainedModel]:
    """The shipped models best first for *inverting* frames: those whose held-out inversion met the
    Gaussianity targets when measured (registry quality), then the rest in :func:`current_models` order.

    Sample quality and inversion pull apart with training on the embedded data (docs/pretrained.md,
    issue #23): the model a finetune should start from is not the one whose ODE lands real frames on noise."""
    models = current_models(directory)
    return sorted(models, key=lambda m: not m.quality.get("gaussianity targets met", False))


def supersede(old: str, new: str, directory: Path | None = None) -> None:
    """Record that shipped model ``new`` replaces ``old`` (``old`` stays loadable); when ``old`` was the
    default of its kind, ``new`` becomes it."""
    path = (directory or WEIGHTS_DIR) / REGISTRY_FILE
    entries = read_json(path, "registry")
    for name in (old, new):
        if name not in entries:
            raise ValueError(f"unknown pretrained model {PREFIX}{name}; the lab ships: {', '.join(entries)}")
    entries[old]["superseded_by"] = new
    if entries[old].pop("default", False):
        _make_default(entries, new)
    _write_registry(path, entries)


def check_name(name: str) -> str:
    """``name`` if a model may ship under it (:data:`NAME_PATTERN`), else a ValueError saying why."""
    if name.startswith(PREFIX):
        raise ValueError(
            f"give the name without the {PREFIX} prefix ({name[len(PREFIX) :] or 'NAME'}): a model is loaded "
            f"as {PREFIX}NAME"
        )
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{name!r} cannot name a shipped model: use 1-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no path, no prefix), e.g. lab-tiny-32-mine"
        )
    return name


def _kind(config: dict[str, Any] | TrainConfig) -> tuple:
    config = config_from_dict(config) if isinstance(config, dict) else config
    return tuple(getattr(config, f) for f in DEFAULT_FIELDS)


def _make_default(entries: dict[str, Any], name: str) -> None:
    """Mark ``name`` the default of its kind in the registry ``entries``, unmarking the one it replaces."""
    kind = _kind(entries[name]["config"])
    for entry in entries.values():
        if _kind(entry["config"]) == kind:
            entry.pop("default", None)
    entries[name]["default"] = True


def get(source: str) -> PretrainedModel:
    """The model ``pretrained:NAME`` (or ``NAME``) names; a typo lists the names there are."""
    name = source[len(PREFIX) :] if is_pretrained(source) else source
    models = registry()
    if name not in models:
        known = ", ".join(PREFIX + n for n in models) or "none (this installation ships no weights)"
        raise ValueError(f"unknown pretrained model {PREFIX}{name}; the lab ships: {known}")
    return models[name]


def verify(model: PretrainedModel) -> Path:
    """The weights file, after checking it is there and its sha256 is the recorded one."""
    recreate = model.recipe.get("command", "pyoco-lab pretrained export (docs/pretrained.md)")
    if not model.path.is_file():
        raise FileNotFoundError(
            f"the weights of {PREFIX}{model.name} are missing ({model.path}); reinstall pyoco-lab, or "
            f"re-create them: {recreate}"
        )
    found = sha256_file(model.path)
    if found != model.sha256:
        raise ValueError(
            f"{model.path} is corrupted: sha256 {found[:16]}... is not the recorded {model.sha256[:16]}...; "
            f"reinstall pyoco-lab (git checkout the file), or re-create it: {recreate}"
        )
    return model.path


def load_pretrained(source: str, *, device: torch.device | str = "cpu") -> tuple[edm.Denoiser, TrainConfig]:
    """(denoiser in eval mode, its TrainConfig) of a shipped model, hash verified."""
    model = get(source)
    weights = load_file(str(verify(model)))
    denoiser = networks.build_network(model.train_config, num_classes=model.num_classes)
    denoiser.load_state_dict({k: v.float() for k, v in weights.items()})
    return denoiser.to(device).eval().requires_grad_(False), model.train_config


def default_for(config: TrainConfig) -> str | None:
    """``pretrained:NAME`` of the shipped image model the registry marks as the default for ``config``'s
    model, resolution, conditioning and data, or None: what ``--init auto`` finetunes from. Never the first
    model by name that fits: an export does not change it unless asked (``pretrained export --default``)."""
    wanted = _kind(replace(config, phase="image"))
    defaults = [m for m in registry().values() if m.default and _kind(m.train_config) == wanted]
    if len(defaults) > 1:
        names = ", ".join(PREFIX + m.name for m in defaults)
        raise ValueError(
            f"the registry {WEIGHTS_DIR / REGISTRY_FILE} marks {names} all as the default for this model and "
            "resolution; restore it (git checkout pyoco_lab/weights/registry.json)"
        )
    return PREFIX + defaults[0].name if defaults else None


def init_record(source: str) -> str:
    """How a run's config.json names a pretrained ``--init``: the name and the hash it had."""
    model = get(source)
    return f"{PREFIX}{model.name}@{model.sha256[:16]}"


def export(
    weights: dict[str, torch.Tensor],
    name: str,
    config: TrainConfig,
    *,
    num_classes: int = 0,
    recipe: dict[str, Any] | None = None,
    quality: dict[str, Any] | None = None,
    directory: Path | None = None,
    default: bool = False,
) -> PretrainedModel:
    """Write ``weights`` as ``NAME.safetensors`` and record them in the registry (both atomically); with
    ``default`` it becomes the default of its kind (``--init auto``), else every default stays as it was."""
    check_name(name)
    if config.phase not in ("image", "video") or config.stage != "base":
        raise ValueError(
            "the lab ships base-stage image models and video finetunes, got a "
            f"{config.stage} {config.phase} run"
        )
    directory = directory or WEIGHTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    file = f"{name}.safetensors"
    tmp = directory / f".{file}.tmp-{os.getpid()}"
    save_file({k: v.detach().float().contiguous().cpu() for k, v in weights.items()}, str(tmp))
    publish_file(tmp, directory / file)
    recipe = {"machine": provenance.machine_description(), **(recipe or {})}
    model = PretrainedModel(
        name,
        file,
        sha256_file(directory / file),
        config_to_dict(config),
        num_classes,
        recipe,
        dict(quality or {}),
    )
    path = directory / REGISTRY_FILE
    entries = read_json(path, "registry") if path.is_file() else {}
    was_default = entries.get(name, {}).get("default", False)  # replaced (--overwrite): it stays the default
    entries[name] = {k: v for k, v in asdict(model).items() if k not in ("name", "default")}
    if default or was_default:
        _make_default(entries, name)
    _write_registry(path, entries)
    return registry(directory)[name]


def _write_registry(path: Path, entries: dict[str, Any]) -> None:
    # allow_nan=False: JSON has no Infinity/NaN and most readers refuse them (config_to_dict writes "inf")
    atomic_write_text(path, json.dumps(entries, indent=2, sort_keys=True, allow_nan=False) + "\n")


def record_quality(
    name: str, quality: dict[str, Any], directory: Path | None = None, *, drop: tuple[str, ...] = ()
) -> None:
    """Store measured quality numbers of a shipped model in its registry entry; entries whose key starts
    with one of ``drop`` are removed first (numbers of a yardstick that has been retired)."""
    path = (directory or WEIGHTS_DIR) / REGISTRY_FILE
    entries = read_json(path, "registry")
    kept = {k: v for k, v in entries[name].get("quality", {}).items() if not k.startswith(drop)}
    entries[name]["quality"] = {**kept, **quality}
    _write_registry(path, entries)


def record_sampling(
    name: str, prior: NoisePrior | None, chosen_by: str, directory: Path | None = None
) -> None:
    """Record the prior a shipped video model samples with by default (None: back to its training prior),
    with the measurement that chose it."""
    path = (directory or WEIGHTS_DIR) / REGISTRY_FILE
    entries = read_json(path, "registry")
    if name not in entries:
        raise ValueError(f"no shipped model named {name!r}; `pyoco-lab pretrained list` names them")
    if config_from_dict(entries[name]["config"]).phase != "video":
        raise ValueError(f"{PREFIX}{name} is an image model; only a video model samples with a noise prior")
    entries[name].pop("sampling", None)
    if prior is not None:
        alpha = "inf" if prior.alpha == float("inf") else prior.alpha  # JSON has no Infinity
        entries[name]["sampling"] = {"noise": prior.kind, "alpha": alpha, "chosen_by": chosen_by}
    _write_registry(path, entries)
