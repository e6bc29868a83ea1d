"""``pyoco-lab reproduce``: run the figure notebooks through papermill, in order, into ``figures/``.

Each notebook ``notebooks/NN_name.ipynb`` is executed with ``preset``, ``figures_dir`` and
``cache_dir`` injected (plus any extra parameters). It runs into a *staging* folder; only when
every cell succeeded does the staging folder replace ``figures/NN_name/`` (figures, JSON and the
executed notebook together). A failure therefore never leaves half-written figures behind: the
run stops at the failing notebook, names its cell and error, keeps the executed copy under
``figures/.failed/`` for inspection, and the figures of earlier successful runs stay as they were.

Expensive artefacts (image model, inverted noise maps, finetuned runs) live in ``cache_dir``
(default ``runs/reproduce``), shared by all notebooks, so nothing is trained twice. At the end
``figures/SUMMARY.md`` puts every reproduced number next to the paper's.

Resuming is the default: a cached training run's folder is keyed by a hash of its config, so a run
found unfinished there (a killed ``reproduce``) is the same run and continues from its newest
intact checkpoint. After an interruption or a fixed failure, rerun the same command.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError
from tqdm.auto import tqdm

from pyoco_lab.analysis import presets, study_plans
from pyoco_lab.analysis.notebook import ensure_data
from pyoco_lab.analysis.results import RESULTS_FILE
from pyoco_lab.analysis.run_records import RECORDS_FOLDER, check_store
from pyoco_lab.fileio import (
    atomic_write_text,
    check_folder_path,
    check_output_folder,
    remove_dead_staging,
    staged_folder,
    umask,
)
from pyoco_lab.report import write_summary
from pyoco_lab.training.checkpoints import default_runs_root

REPO_ROOT = Path(__file__).resolve().parents[1]
PRESETS = tuple(presets.SETTINGS)  # smoke, quick, cpu-long, standard, ucf
# Parameters every figure notebook declares; reproduce() sets them itself.
RESERVED_PARAMETERS = ("preset", "figures_dir", "cache_dir")
RECORDS_ONLY_PARAMETER = "records_only"  # what `--from-records` sets in the notebooks that declare it


# What to do after a failure or an interruption (said by NotebookFailed and the CLI).
RERUN_HINT = (
    "rerun the same command to continue: finished training runs in the cache are reused and an "
    "interrupted one resumes from its newest checkpoint (resuming is the default; no flag needed)"
)
ONLY_EMPTY = "--only got no notebook names; pass e.g. --only 02,04 or omit --only"


class NotebookFailed(RuntimeError):
    """A notebook raised: names the notebook, the cell and the error; earlier figures are untouched."""

    def __init__(self, notebook: str, cell_index: int, ename: str, evalue: str, source: str, executed: Path):
        self.notebook, self.cell_index, self.ename, self.evalue = notebook, cell_index, ename, evalue
        self.source, self.executed = source, executed
        first_line = next((line for line in source.splitlines() if line.strip()), "").strip()
        super().__init__(
            f"notebook {notebook} failed in cell {cell_index} ({first_line[:80]!r}): {ename}: {evalue}\n"
            f"  executed copy with the traceback: {executed}\n"
            f"  figures of earlier successful runs were left untouched; once the cause is fixed, {RERUN_HINT}"
        )


@dataclass(frozen=True)
class NotebookRun:
    """What one executed notebook produced."""

    name: str
    output_dir: Path
    seconds: float


def default_notebooks_dir() -> Path:
    return REPO_ROOT / "notebooks"


def default_figures_dir(preset: str = "quick") -> Path:
    """``figures/`` for the README's main job (``quick``), ``figures/<preset>/`` for every other preset, so a
    smoke or long run never overwrites the committed quick figures."""
    home = REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() else Path.cwd()  # never site-packages
    return home / "figures" if preset == "quick" else home / "figures" / preset


def default_cache_dir() -> Path:
    return default_runs_root() / "reproduce"


def list_notebooks(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The figure notebooks ``NN_name.ipynb`` in order (``00_*``, the explorer, is not a figure)."""
    directory = Path(notebooks_dir or default_notebooks_dir())
    if not directory.is_dir():
        raise FileNotFoundError(f"notebook folder {directory} not found; run from a clone of the repository")
    paths = sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("00_"))
    if not paths:
        raise FileNotFoundError(f"no figure notebooks NN_name.ipynb in {directory}")
    return paths


def parse_only(only: str | Iterable[str] | None) -> list[str] | None:
    """The notebook names of ``--only`` ("02,tsne" or a list of names); None (all) when not given.

    Given but naming nothing (``--only ,``, ``--only ""``, only commas and spaces) is an error, not
    "everything": a typo must not start a run of every notebook.
    """
    if only is None:
        return None
    items = (
        only.split(",") if isinstance(only, str) else [part for item in only for part in str(item).split(",")]
    )
    names = [name.strip() for name in items if name.strip()]
    if not names:
        raise ValueError(ONLY_EMPTY)
    return names


def select_notebooks(paths: list[Path], only: str | Iterable[str] | None) -> list[Path]:
    """Keep the notebooks named in ``only`` (by number '02', stem '02_inversion' or name 'inversion').

    ``only=None`` keeps them all; an ``only`` that names nothing raises ValueError.
    """
    names = parse_only(only)
    if names is None:
        return paths
    selected = []
    for name in names:
        matches = [p for p in paths if name in (p.stem, p.stem[:2], p.stem[3:])]
        if not matches:
            known = ", ".join(p.stem for p in paths)
            raise ValueError(f"--only {name!r} matches no notebook; choose from {known} (number or name)")
        selected.extend(m for m in matches if m not in selected)
    return sorted(selected)


def check_parameters(path: Path, parameters: Mapping[str, Any]) -> None:
    """Reject parameter names the notebook does not declare (papermill itself would only log them)."""
    declared = set(papermill.inspect_notebook(str(path)))
    if not declared:
        raise ValueError(f"{path.name} has no cell tagged 'parameters'; tag its first code cell 'parameters'")
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValueError(
            f"{path.name} has no parameter(s) {', '.join(unknown)}; it declares {', '.join(sorted(declared))}"
        )


def run_notebook(
    path: str | os.PathLike,
    figures_dir: str | os.PathLike,
    *,
    preset: str,
    cache_dir: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    progress: bool = False,
    stream: TextIO | None = None,
    overwrite: bool = False,
) -> NotebookRun:
    """Execute one notebook into ``figures_dir/<stem>/`` (atomically, through ``fileio.staged_folder``; see
    the module docstring), which may replace only an earlier run's output (:func:`check_figures_folder`)
    unless ``overwrite``. The staging folders of a killed reproduce are removed.

    ``stream`` (e.g. ``sys.stderr``) receives the kernel's output as it is produced: every training run's,
    inversion's and evaluation's own progress bar, live, instead of one silent cell for minutes.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} not found")
    parameters = dict(parameters or {})
    clash = sorted(set(parameters) & set(RESERVED_PARAMETERS))
    if clash:
        raise ValueError(f"pass {', '.join(clash)} as arguments of reproduce, not as extra parameters")
    figures_dir = Path(figures_dir).resolve()
    target = figures_dir / path.stem
    all_parameters = {"preset": preset, "figures_dir": "", "cache_dir": str(Path(cache_dir).resolve())}
    check_parameters(path, {**all_parameters, **parameters})
    # the staging folders of an earlier version, named .staging-<stem>-*: none of their writers is alive
    remove_dead_staging(figures_dir.glob(f".staging-{glob.escape(path.stem)}-*"), target, "--figures")
    start = time.perf_counter()
    with staged_folder(
        target, marker=RESULTS_FILE, files=None, overwrite=overwrite, option="--figures"
    ) as staging:
        executed = staging / path.name
        try:
            papermill.execute_notebook(
                str(path),
                str(executed),
                parameters={**all_parameters, "figures_dir": str(staging), **parameters},
                cwd=str(path.parent),
                kernel_name=kernel_name,
                progress_bar=progress,
                log_output=False,
                stdout_file=stream,
                stderr_file=stream,
                execution_timeout=timeout,
                # an interrupted reproduce kills its kernel at once: a kernel asked to shut down while it
                # runs a cell prints a ZMQError traceback over the one-line "interrupted"
                shutdown_kernel="immediate",
            )
        except PapermillExecutionError as error:
            failed_dir = figures_dir / ".failed"
            failed_dir.mkdir(exist_ok=True)
            kept = failed_dir / path.name
            if executed.exists():
                os.replace(executed, kept)
            # papermill counts the injected-parameters cell; report the index in the source notebook.
            index = error.cell_index
            cell = index - 1 if index > _parameters_cell_index(path) else index
            raise NotebookFailed(path.stem, cell, error.ename, error.evalue, error.source, kept) from None
        _unpair(executed)
    return NotebookRun(path.stem, target, time.perf_counter() - start)


def check_figures_folder(target: Path, *, overwrite: bool = False) -> None:
    """``figures/NN_name/`` may be replaced when missing, empty or a notebook run's own output: every
    notebook ends with ``save_results``, so its folder holds results.json (the committed figures/ folders
    too, so a fresh clone reproduces without --overwrite); anything else needs ``overwrite``."""
    check_output_folder(target, marker=RESULTS_FILE, files=None, overwrite=overwrite, option="--figures")


def _unpair(executed: Path) -> None:
    """Drop the jupytext pairing from an executed copy: saving it in JupyterLab must not write a .py."""
    notebook = nbformat.read(str(executed), as_version=4)
    if notebook.metadata.pop("jupytext", None) is not None:
        nbformat.write(notebook, str(executed))


def parameters_by_notebook(paths: list[Path], parameters: Mapping[str, Any]) -> dict[Path, dict[str, Any]]:
    """Each notebook gets the extra parameters it declares; a name no selected notebook declares is
    refused before anything runs (papermill itself would only log it)."""
    clash = sorted(set(parameters) & set(RESERVED_PARAMETERS))
    if clash:
        raise ValueError(f"pass {', '.join(clash)} as arguments of reproduce, not as extra parameters")
    declared = {path: set(papermill.inspect_notebook(str(path))) for path in paths}
    unknown = sorted(set(parameters) - set().union(*declared.values()))
    if unknown:
        raise ValueError(
            f"no selected notebook declares the parameter(s) {', '.join(unknown)}; see each notebook's "
            "parameters cell (docs/reproduce.md)"
        )
    for path in paths:
        check_parameters(path, dict.fromkeys(RESERVED_PARAMETERS))
    return {path: {k: v for k, v in parameters.items() if k in declared[path]} for path in paths}


def _parameters_cell_index(path: Path) -> int:
    notebook = nbformat.read(str(path), as_version=4)
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    return -1


def reproduce(
    preset: str = "quick",
    *,
    only: str | Iterable[str] | None = None,
    figures_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
    overwrite: bool = False,
    from_records: bool = False,
) -> Path:
    """Run the figure notebooks in order, then write ``figures/SUMMARY.md``; return its path.

    Raises :class:`NotebookFailed` at the first failing notebook (later ones are not run). Running
    it again continues: cached training runs are reused, and an interrupted one resumes. With
    ``from_records`` (a preset that commits run records) every notebook that declares ``records_only``
    renders from those records without training (``Settings.records_only``).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if from_records and not presets.settings(preset).keep_records:
        keeping = [name for name, other in presets.SETTINGS.items() if other.keep_records]
        raise ValueError(
            f"--from-records needs a preset that commits its run records ({', '.join(keeping)}); preset "
            f"{preset} keeps its runs in the cache only: drop --from-records"
        )
    paths = select_notebooks(list_notebooks(notebooks_dir), only)
    figures_dir = Path(figures_dir or default_figures_dir(preset))
    cache_dir = Path(cache_dir or default_cache_dir())
    check_folder_path(figures_dir, "--figures")
    check_folder_path(cache_dir, "--cache")
    per_notebook = parameters_by_notebook(paths, parameters or {})  # refuses unknown names up front
    if from_records:
        for path in paths:
            if RECORDS_ONLY_PARAMETER in papermill.inspect_notebook(str(path)):
                per_notebook[path][RECORDS_ONLY_PARAMETER] = True
    for path in paths:  # a folder that is not ours stops the run before any notebook, not after hours
        check_figures_folder(figures_dir / path.stem, overwrite=overwrite)
    if from_records:
        print(records_line(preset, figures_dir / RECORDS_FOLDER, cache_dir), file=sys.stderr)
    if stream is not None:  # the kernels inherit the environment: text bars, which the stream can show
        os.environ["PYOCO_PROGRESS"] = "text"
    bar = tqdm(paths, desc="reproduce", unit="notebook", disable=not progress)
    timings = {}
    for path in bar:
        bar.set_postfix_str(path.stem)
        run = run_notebook(
            path,
            figures_dir,
            preset=preset,
            cache_dir=cache_dir,
            parameters=per_notebook[path],
            kernel_name=kernel_name,
            timeout=timeout,
            stream=stream,
            overwrite=overwrite,
        )
        timings[run.name] = run.seconds
        tqdm.write(f"  {run.name}: {run.seconds:.0f} s -> {run.output_dir}")
    return write_summary(figures_dir, preset=preset, timings=timings)


def records_line(preset: str, store: Path, cache_dir: Path) -> str:
    """What ``--from-records`` renders from, checked before any notebook runs (``run_records.check_store``:
    bad records and an empty or missing ``store`` are refused in one line), in one line."""
    # with the records: the confirmation runs are those of the alphas the recorded sweep chose
    s = replace(presets.settings(preset), records_dir=str(store))
    plan = [spec for spec, _ in study_plans.evaluation_plan(s)]
    folders: dict[tuple[str, str], list[Path]] = {}
    for spec in plan:  # the runs of one trajectory (a curve run and its prefixes) share one record
        folders.setdefault((spec.label, spec.trajectory_key()), []).append(spec.folder(cache_dir))
    counts = check_store(store, [(*run, found) for run, found in folders.items()], preset=preset)
    line = f"rendering from records: {counts['recorded']} of {counts['runs']} runs of {preset} in {store}"
    if counts["compared"]:
        line += f"; {counts['compared']} evaluations match the weights in {cache_dir}"
    if counts["not_compared"]:
        line += (
            f"; the weights' sha256 of {counts['not_compared']} evaluations cannot be compared without the "
            "weights (checkpoints stay out of git): their numbers are the records' own"
        )
    return line


def run_study_part(
    preset: str,
    *,
    figures_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    hours: float | None = None,
    progress: bool = True,
) -> dict:
    """One part of a long study: ``study_plans.run_study`` of the preset, its records in ``FIGURES/runs``.

    Refused for a preset that does not keep records (its results would live only in the cache).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    s = presets.settings(preset)
    if not s.keep_records:
        keeping = [name for name, other in presets.SETTINGS.items() if other.keep_records]
        raise ValueError(
            f"--runs needs a preset that commits its run records ({', '.join(keeping)}); preset {preset} "
            "keeps its runs in the cache only: run `pyoco-lab reproduce` without --runs"
        )
    if hours is not None and not hours > 0:
        raise ValueError(f"--hours must be > 0, got {hours}")
    check_folder_path(Path(cache_dir or default_cache_dir()), "--cache")
    records = Path(figures_dir or default_figures_dir(preset)) / RECORDS_FOLDER
    check_folder_path(records, "--figures")
    s = replace(s, records_dir=str(records.resolve()))
    ensure_data(s)
    report = study_plans.run_study(s, cache_dir or default_cache_dir(), hours=hours, progress=progress)
    return {**report, "records_dir": str(records)}


SLURM_ARRAY = """#!/usr/bin/env bash
#SBATCH --job-name=pyoco-lab
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@600
#SBATCH --output=%x-%A_%a.out
# One array task = one line of the run list given as $1 (written by `pyoco-lab reproduce --plan`).
# --cpus-per-task: the lines' data-loader workers + the training process. A task that nears its --time
# gets USR1 ten minutes early and requeues itself: it keeps its job id, so the video array's afterok
# dependency keeps waiting instead of failing, and the line's --resume continues from the newest checkpoint.
# Adapt partition, time and GPUs to your cluster (sbatch options on the command line override these);
# GPUS is torchrun's --nproc_per_node.
set -euo pipefail
line=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" "$1")
echo "$line"
requeue() {{
    echo "time limit near: requeueing ${{SLURM_ARRAY_JOB_ID:-}}_${{SLURM_ARRAY_TASK_ID}} (it resumes)"
    scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
}}
trap requeue USR1
eval "$line" &  # in the background: bash runs a trap only between commands, and `wait` is one
wait $!
"""
DEFAULT_TIME = "2-00:00:00"  # #SBATCH --time of each task; longer runs requeue and resume (see above)


PLAN_RECORD = "plan.json"  # what marks a folder as a plan's own (a later --plan may replace it)
PLAN_FILES = ("image_runs.txt", "video_runs.txt", "slurm_array.sh", "submit.sh", PLAN_RECORD)


def write_plan(
    preset: str,
    out_dir: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    python: str | os.PathLike | None = None,
    time_limit: str = DEFAULT_TIME,
    overwrite: bool = False,
) -> dict:
    """Write the preset's run graph for a cluster into the folder ``out_dir`` and return what was written:
    {"runs": the plan, "lists": {phase: its run list, for each phase with runs}, "files": every file}.

    ``image_runs.txt`` / ``video_runs.txt`` (only for a phase that has runs): one ready line per run (``GPUS``
    processes, default 1) that starts ``torch.distributed.run`` with ``python`` -- the interpreter that
    writes the plan by default, so a line runs without activating its environment (``$PYOCO_PYTHON``
    overrides it when the plan is run) -- image runs first since finetunes start from them;
    ``slurm_array.sh``: a job-array script running line ``$SLURM_ARRAY_TASK_ID`` of a list, with a time
    limit, CPUs for the data workers and a requeue shortly before the limit; ``submit.sh``: submits the image
    array, then the video array with ``--dependency=afterok`` on it; ``plan.json``: every run's folder, phase
    and init. Runs finished elsewhere into the shared ``cache_dir`` are found by ``pyoco-lab reproduce``
    (same config hash, same folder), which then only executes the notebooks.

    ``out_dir`` follows every output's rule (``fileio.staged_folder``): written whole or not at all, and an
    existing folder is replaced only when it is an earlier plan (``plan.json`` and plan files only), or with
    ``overwrite`` -- never a file, a training run or run records.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    python = Path(python or sys.executable).absolute()
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise ValueError(f"--python {python} is not an executable file; name the environment's python")
    out = Path(out_dir)
    check_output_folder(out, marker=PLAN_RECORD, files=PLAN_FILES, overwrite=overwrite, option="--plan")
    cache_dir = Path(cache_dir or default_cache_dir()).resolve()
    check_folder_path(cache_dir, "--cache")
    plan = study_plans.study_plan(presets.settings(preset), cache_dir)
    launch = (
        f"${{PYOCO_PYTHON:-{shlex.quote(str(python))}}} -m torch.distributed.run --standalone "
        "--nproc_per_node ${GPUS:-1} -m pyoco_lab.cli train "
    )
    lines = {
        phase: [
            launch + " ".join(shlex.quote(a) for a in run["train_args"])
            for run in plan
            if run["phase"] == phase
        ]
        for phase in ("image", "video")
    }
    lists = {phase: out / f"{phase}_runs.txt" for phase in lines if lines[phase]}
    cpus = max((run["num_workers"] for run in plan), default=0) + 1
    submit = [
        "#!/usr/bin/env bash",
        "# Submit the study: image runs first, finetunes when they all succeeded (a requeued task keeps",
        "# its job id, so the dependency waits for it).",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
    ]
    after = ""
    if lines["image"]:
        submit.append(
            f"image=$(sbatch --parsable --array=1-{len(lines['image'])} slurm_array.sh image_runs.txt)"
        )
        after = " --dependency=afterok:$image"
    if lines["video"]:
        submit.append(f"sbatch{after} --array=1-{len(lines['video'])} slurm_array.sh video_runs.txt")
    record = {"preset": preset, "cache_dir": str(cache_dir), "python": str(python), "runs": plan}
    with staged_folder(
        out, marker=PLAN_RECORD, files=PLAN_FILES, overwrite=overwrite, option="--plan"
    ) as staging:
        for phase, path in lists.items():
            atomic_write_text(staging / path.name, "".join(line + "\n" for line in lines[phase]))
        atomic_write_text(staging / "slurm_array.sh", SLURM_ARRAY.format(cpus=cpus, time=time_limit))
        atomic_write_text(staging / "submit.sh", "\n".join(submit) + "\n")
        for script in ("slurm_array.sh", "submit.sh"):
            os.chmod(staging / script, 0o755 & ~umask())
        atomic_write_text(staging / PLAN_RECORD, json.dumps(record, indent=2) + "\n")
    files = [*lists.values(), out / "slurm_array.sh", out / "submit.sh", out / PLAN_RECORD]
    return {"runs": plan, "lists": lists, "files": files}
