"""The figure notebooks run end to end (smoke preset) and write sane files; the runner fails cleanly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import pytest

from pyoco_lab import reproduce as rp
from pyoco_lab.analysis import experiments, presets, study_plans, study_runs
from pyoco_lab.metrics.controls import CONTROLS
from pyoco_lab.metrics.yardsticks import CLIP_CONTROL_TARGETS
from pyoco_lab.report import summary

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def _notebook(path: Path, parameters: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    param = nbformat.v4.new_code_cell(parameters)
    param.metadata["tags"] = ["parameters"]
    nb.cells = [param, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, str(path))
    return path


PARAMS = 'preset = "quick"\nfigures_dir = "."\ncache_dir = "."'
WRITE_OK = (
    "from pathlib import Path\n"
    "from pyoco_lab.analysis.results import save_results\n"
    "(Path(figures_dir) / 'figure.png').write_bytes(b'new')\n"
    "save_results(figures_dir, 'NAME', preset, {'value': 1.0})"
)


def _cells(nb) -> list[tuple[str, str, list]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def test_notebook_pairs_are_in_sync():
    """Each notebooks/NN_name.py (jupytext py:percent) and its .ipynb hold the same cells."""
    import jupytext

    fix = "run `make notebooks` (jupytext --sync: the more recently modified file of each pair wins)"
    sources = {p.stem for p in NOTEBOOKS.glob("*.py")}
    notebooks = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert sources == notebooks, (
        f"unpaired: .py without .ipynb {sorted(sources - notebooks)}, "
        f".ipynb without .py {sorted(notebooks - sources)}; {fix}"
    )
    stale = []
    for stem in sorted(sources):
        nb = nbformat.read(str(NOTEBOOKS / f"{stem}.ipynb"), as_version=4)
        formats = nb.metadata.get("jupytext", {}).get("formats")
        assert formats == "ipynb,py:percent", f"{stem}.ipynb is not paired (jupytext formats: {formats!r})"
        expected = _cells(jupytext.read(NOTEBOOKS / f"{stem}.py", fmt="py:percent"))
        actual = _cells(nb)
        if expected != actual:
            first = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b), None)
            where = f"cell {first}" if first is not None else f"{len(expected)} vs {len(actual)} cells"
            stale.append(f"{stem} ({where})")
    assert not stale, f"notebooks/*.py and *.ipynb differ: {', '.join(stale)}; {fix}"


def test_start_applies_the_overrides_and_makes_the_figure_folder(tmp_path, capsys):
    from pyoco_lab.analysis import notebook

    s, out = notebook.start("smoke", str(tmp_path / "fig"), noise_frames=5, noise_alphas=[0, 2], seeds=None)
    assert out == tmp_path / "fig" and out.is_dir()
    smoke = presets.settings("smoke")
    assert (s.noise_frames, s.noise_alphas, s.seeds) == (5, (0.0, 2.0), smoke.seeds)
    assert capsys.readouterr().out == f"preset smoke: {s.description} (budget: {s.budget})\n"
    with pytest.raises(ValueError, match="unknown setting.*noise_frame"):
        notebook.start("smoke", tmp_path / "never", noise_frame=5)
    assert not (tmp_path / "never").exists()


def test_every_figure_notebook_declares_the_reserved_parameters():
    import papermill

    for path in rp.list_notebooks():
        declared = papermill.inspect_notebook(str(path))
        assert set(rp.RESERVED_PARAMETERS) <= set(declared), path.name
        nb = nbformat.read(str(path), as_version=4)
        assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code"), (
            f"{path.name} has outputs"
        )


def test_failure_names_notebook_and_cell_and_keeps_earlier_figures(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", PARAMS, WRITE_OK.replace("NAME", "01_ok"))
    _notebook(notebooks / "02_broken.ipynb", PARAMS, "x = 1", "raise ValueError('boom in cell two')")
    _notebook(notebooks / "03_never.ipynb", PARAMS, WRITE_OK.replace("NAME", "03_never"))
    figures = tmp_path / "figures"
    (figures / "02_broken").mkdir(parents=True)
    (figures / "02_broken" / "figure.png").write_bytes(b"earlier good figure")
    (figures / "01_ok").mkdir()
    (figures / "01_ok" / "stale.png").write_bytes(b"from an older run")
    for earlier in ("01_ok", "02_broken"):  # an earlier run's output: it holds results.json
        (figures / earlier / "results.json").write_text("{}")

    with pytest.raises(rp.NotebookFailed) as info:
        rp.reproduce(
            "smoke",
            figures_dir=figures,
            cache_dir=tmp_path / "cache",
            notebooks_dir=notebooks,
            progress=False,
        )

    failure = info.value
    assert failure.notebook == "02_broken"
    assert failure.cell_index == 2  # index in the source notebook (the injected cell is not counted)
    assert failure.ename == "ValueError" and "boom in cell two" in failure.evalue
    assert "02_broken" in str(failure) and "cell 2" in str(failure)
    # the failing notebook's earlier figures are untouched, the failed copy is kept for inspection
    assert (figures / "02_broken" / "figure.png").read_bytes() == b"earlier good figure"
    assert sorted(p.name for p in (figures / "02_broken").iterdir()) == ["figure.png", "results.json"]
    assert failure.executed.exists()
    # the successful notebook's folder was replaced as a whole (no stale files), later ones never ran
    assert sorted(p.name for p in (figures / "01_ok").iterdir()) == [
        "01_ok.ipynb",
        "figure.png",
        "results.json",
    ]
    assert not (figures / "03_never").exists()
    assert not list(figures.glob(".staging-*"))
    assert not (figures / "SUMMARY.md").exists()


def test_unknown_parameter_is_rejected_before_anything_runs(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", PARAMS, "raise SystemExit('must not run')")
    with pytest.raises(ValueError, match="no selected notebook declares.*alpah"):
        rp.reproduce(
            "smoke",
            figures_dir=tmp_path / "f",
            notebooks_dir=notebooks,
            parameters={"alpah": 2},
            progress=False,
        )
    with pytest.raises(ValueError, match="--only 'nine'"):
        rp.select_notebooks(rp.list_notebooks(notebooks), ["nine"])
    with pytest.raises(ValueError, match="unknown preset"):
        rp.reproduce("huge", figures_dir=tmp_path / "f", notebooks_dir=notebooks, progress=False)


def test_reproduce_replaces_only_its_own_earlier_figures(tmp_path, capsys, monkeypatch):
    from pyoco_lab.cli import main

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    monkeypatch.setattr(rp, "default_notebooks_dir", lambda: notebooks)  # the CLI's notebooks
    _notebook(notebooks / "01_ok.ipynb", PARAMS, WRITE_OK.replace("NAME", "01_ok"))
    _notebook(notebooks / "02_ok.ipynb", PARAMS, "raise SystemExit('must not run')")
    figures = tmp_path / "figures"
    mine = figures / "02_ok"  # a folder no run wrote (no results.json), e.g. the user's own notes
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt.*--overwrite"):  # refused before 01 runs
        rp.reproduce("smoke", figures_dir=figures, notebooks_dir=notebooks, progress=False)
    assert not (figures / "01_ok").exists() and (mine / "notes.txt").read_text() == "mine"
    argv = ["reproduce", "--preset", "smoke", "--figures", str(figures), "--quiet", "--only", "02"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "--figures" in err and len(err.strip().splitlines()) == 1
    assert (mine / "notes.txt").read_text() == "mine"
    # the repository's committed figures are a run's own output, so a fresh clone reproduces into them
    for folder in sorted((REPO / "figures").glob("0*")):
        rp.check_figures_folder(folder)
    # an earlier run's folder is replaced whole, twice; --overwrite replaces the user's folder
    for _ in range(2):
        rp.reproduce("smoke", only="01", figures_dir=figures, notebooks_dir=notebooks, progress=False)
    assert (figures / "01_ok" / "figure.png").read_bytes() == b"new"
    (notebooks / "02_ok.ipynb").unlink()
    _notebook(notebooks / "02_ok.ipynb", PARAMS, WRITE_OK.replace("NAME", "02_ok"))
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in mine.iterdir()) == ["02_ok.ipynb", "figure.png", "results.json"]


def test_cli_reports_bad_input_in_one_line(tmp_path):
    from pyoco_lab.cli import main

    assert main(["reproduce", "--only", "99_nothing", "--figures", str(tmp_path)]) == 2


# ------------------------------------------------------------------------------------------------
# Every figure notebook, executed with the smoke preset: the files exist and the numbers are sane.


def _run(stem: str, tmp_path_factory) -> tuple[Path, dict]:
    figures = tmp_path_factory.getbasetemp() / "figures"
    cache = tmp_path_factory.getbasetemp() / "cache"  # shared: later notebooks reuse trained runs
    run = rp.run_notebook(NOTEBOOKS / f"{stem}.ipynb", figures, preset="smoke", cache_dir=cache)
    data = json.loads((run.output_dir / "results.json").read_text())
    assert data["notebook"] == stem and data["preset"] == "smoke"
    assert (run.output_dir / f"{stem}.ipynb").exists()
    return run.output_dir, data


def _png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert path.stat().st_size > 2000, f"{path} is suspiciously small"


def test_01_noise_priors(tmp_path_factory):
    out, data = _run("01_noise_priors", tmp_path_factory)
    _png(out / "correlation_matrices.png")
    _png(out / "correlation_vs_distance.png")
    assert (out / "correlation_recommended.html").read_text().count("plotly") > 0
    assert (out.parent / "plotly.min.js").stat().st_size > 1_000_000
    assert len(list(out.glob("noise_*.gif"))) == 4
    # closed form and sampled noise agree within the sampling error the notebook reports
    assert data["worst_error_in_standard_errors"] < 6
    assert 0.8 < data["variance_range"][0] <= data["variance_range"][1] < 1.2
    mixed_inf = data["curves"]["mixed inf"]["closed"]
    assert all(math.isclose(c, 1.0) for c in mixed_inf)
    assert data["limits"]["progressive, alpha=0"] == [0.0, 0.0]


@pytest.mark.slow
def test_02_inversion(tmp_path_factory):
    out, data = _run("02_inversion", tmp_path_factory)
    for name in ("image_model_samples.png", "frames.png", "inverted_maps.png", "table1.png"):
        _png(out / name)
    _png(out / "similarity_vs_distance.png")
    # Table 1 over frames drawn across each held-out source: every unordered pair once, no self-pairs
    m, same, different = data["num_frames_sampled"], data["same_video"], data["different_video"]
    assert data["num_sources"] >= 2 and same["count"] + different["count"] == m * (m - 1) // 2
    for row in (same, different):
        assert -1 <= row["mean"] <= 1 and 0 <= row["std"] <= 1
    assert set(data["controls"]) == {"raw pixels", "i.i.d. noise"}
    assert data["controls"]["i.i.d. noise"]["same_video"]["count"] == same["count"]
    quality = data["image_quality"]  # the frame yardsticks on the samples, beside their controls
    rows = quality["rows"]
    assert {"image model samples", "real (other train clips)", "noise", "blur 4x4"} <= set(rows)
    for row in rows.values():
        low, high = row["KID-app-ci"]
        assert low <= row["KID-app"] <= high and 0 <= row["C2ST-frame"] <= 1
    assert rows["noise"]["KID-app-ci"][0] > rows["real (other train clips)"]["KID-app-ci"][1]
    assert set(quality["controls_pass"]) >= {"KID-app", "C2ST-frame", "copy-fraction"}
    assert data["by_distance"]["mean"][0] == pytest.approx(1.0)  # a map is identical to itself
    assert all(0 <= a < 1e6 for a in data["fitted_alpha"].values())
    gauss = data["gaussianity"]
    assert isinstance(gauss["looks_gaussian"], bool) and gauss["variance"] > 0 and gauss["floor_ratio"] > 0


@pytest.mark.slow
def test_03_tsne(tmp_path_factory):
    out, data = _run("03_tsne", tmp_path_factory)
    for name in ("tsne_inverted", "tsne_priors"):
        _png(out / f"{name}.png")
        assert "video %{customdata[0]}, frame %{customdata[1]}" in (out / f"{name}.html").read_text()
    assert (
        0 <= data["neighbour_chance"] < data["neighbour_same_video"] <= 1 or data["neighbour_same_video"] >= 0
    )
    # panel (b) is pure noise, so it is deterministic in expectation: the prior's frames cluster
    assert 0 < data["progressive_spread_ratio"] < 1


def _interval(record) -> None:
    assert set(record) >= {"mean", "low", "high", "n", "method", "values"}
    assert math.isfinite(record["mean"]) and len(record["values"]) == record["n"]


@pytest.mark.slow
def test_04_alpha_sweep(tmp_path_factory):
    out, data = _run("04_alpha_sweep", tmp_path_factory)
    for name in (
        "fig7_alpha_sweep",
        "fig7_KID-app",
        "fig7_FD-motion-lab",
        "fig7_motion_ratio",
        "metric_controls",
    ):
        _png(out / f"{name}.png")
    assert set(data["curves"]) == {"mixed", "progressive"}
    for curve in data["curves"].values():
        assert set(curve) == {"0", "1", "inf"}
        for point in curve.values():
            _interval(point)
            assert point["mean"] >= 0
            assert point["low"] <= point["mean"] <= point["high"]  # one seed: the bootstrap interval
    # alpha = 0 and alpha = inf are one shared run for both priors
    assert data["curves"]["mixed"]["0"] == data["curves"]["progressive"]["0"]
    assert data["curves"]["mixed"]["inf"] == data["curves"]["progressive"]["inf"]
    assert data["best_alpha"]["mixed"] in data["curves"]["mixed"]
    # the metric controls, scored like every generated run; frozen clips do not move at all
    assert set(data["controls"]) == set(CONTROLS)
    # every clip measure that can run at smoke's N (4 clips: too few for a held-out half of C2ST-clip)
    assert set(experiments.CLIP_MEASURES) - {"C2ST-clip"} <= set(data["controls"]["real"])
    assert set(data["controls"]["real"]) <= set(experiments.CLIP_MEASURES)
    assert data["yardsticks"]["control_targets"]["FD-motion-lab"] == list(
        CLIP_CONTROL_TARGETS["FD-motion-lab"]
    )
    # verdicts cite content and motion beside FVD-lab, each with its interval
    assert list(data["by_metric"]) == list(experiments.VERDICT_METRICS)
    for entry in data["by_metric"].values():
        _interval(entry["scratch"])
        assert all(set(curve) == {"0", "1", "inf"} for curve in entry["curves"].values())
    text = summary.render_section("04_alpha_sweep", data)
    assert "| **its controls** |" in text and "KID-app (content score, the primary verdict metric" in text
    assert "- from scratch vs every finetuned condition: " in text
    assert data["controls"]["frozen"]["motion-ratio"]["mean"] == 0.0
    assert data["controls"]["real"]["motion-ratio"]["mean"] == pytest.approx(1.0)
    assert data["temporal"]["motion-ratio"]["mixed"]["inf"]["mean"] < 0.05  # identical noise: near frozen
    text = (out.parent / "04_alpha_sweep" / "results.json").read_text()
    assert "std" not in json.loads(text)["curves"]["mixed"]["1"]  # intervals, not a single seed's "± 0"


@pytest.mark.slow
def test_05_strategies(tmp_path_factory):
    out, data = _run("05_strategies", tmp_path_factory)
    _png(out / "table5_strategies.png")
    assert set(data["rows"]) == {"image", "scratch", "finetune", "mixed", "progressive"}
    assert {"IS-lab", "FVD-lab", "FD-frame-lab"} <= set(data["metrics"])
    for name, row in data["rows"].items():
        if name == "image":  # Table 5's "Image Diffusion" row: frame metrics only, with their interval
            _interval(row["FD-frame-lab"])
            assert row["FD-frame-lab"]["mean"] >= 0 and row["IS-lab"] is None and row["FVD-lab"] is None
            _interval(row["KID-app"])  # the content score of its frames, as the video rows have
            assert row["FD-motion-lab"] is None  # no clips, no motion
            continue
        for metric in ("IS-lab", "FVD-lab", "FD-frame-lab"):
            _interval(row[metric])
        assert row["IS-lab"]["mean"] >= 1 and row["FVD-lab"]["mean"] >= 0
    content_table = summary.render_section("05_strategies", data).split("| strategy | KID-app")[1]
    assert "| Image Diffusion (ID) | " in content_table.split("Verdicts")[0]  # its frames' content score


@pytest.mark.slow
def test_06_model_size(tmp_path_factory):
    out, data = _run("06_model_size", tmp_path_factory)
    _png(out / "fig8_model_size.png")
    assert len(data["sizes"]) == len(data["parameters"]) >= 1 and all(p > 1e5 for p in data["parameters"])
    for values in data["results"].values():
        assert len(values) == len(data["sizes"])
        for record in values:
            _interval(record)
            assert record["mean"] >= 0


@pytest.mark.slow
def test_07_sample_videos(tmp_path_factory):
    out, data = _run("07_sample_videos", tmp_path_factory)
    _png(out / "fig6_temporal_stats.png")
    assert set(data["stats"]) == {"0", "1", "10"}
    assert len(list(out.glob("samples_*.gif"))) == 3 and len(list(out.glob("samples_*.mp4"))) == 3
    for stats in (*data["stats"].values(), data["real"]):
        assert -1 <= stats["frame-cosine"]["mean"] <= 1 and stats["motion-energy"]["mean"] >= 0
        assert stats["diversity"]["mean"] >= 0
    executed = nbformat.read(str(out / "07_sample_videos.ipynb"), as_version=4)
    html = json.dumps([c.get("outputs", []) for c in executed.cells])
    assert "image/gif;base64" in html  # the samples play inline, also in a static viewer


@pytest.mark.slow
def test_08_finetune_length(tmp_path_factory):
    out, data = _run("08_finetune_length", tmp_path_factory)
    _png(out / "finetune_length.png")
    curves = data["curves"]
    # motion beside the content and motion scores (and FVD-lab, kept for the record), and whether clips keep
    # one scene (#38: fresh evaluations carry it)
    assert set(curves) == {"motion-ratio", "KID-app", "FD-motion-lab", "FVD-lab", "scene-held"}
    assert set(curves["motion-ratio"]) == {"iid α=0", "progressive α=2", "mixed α=inf"}
    for per_prior in curves.values():
        for points in per_prior.values():
            assert list(points) == ["3"]  # smoke: the runs' final step
            _interval(points["3"])
    summary_md = (out.parent / "SUMMARY.md") if (out.parent / "SUMMARY.md").exists() else None
    assert summary_md is None or "Finetune length" in summary_md.read_text()


# ------------------------------------------------------------------------------------------------
# --only that names nothing, and resuming (fast: no notebook is executed)


@pytest.mark.parametrize("only", [",", "", " , ,", " "])
def test_only_that_names_no_notebook_is_refused(only, tmp_path, capsys, monkeypatch):
    from pyoco_lab.cli import main

    def must_not_run(*args, **kwargs):
        raise AssertionError("a notebook was run for an --only that names none")

    monkeypatch.setattr(rp, "run_notebook", must_not_run)
    code = main(
        ["reproduce", "--only", only, "--figures", str(tmp_path / "f"), "--cache", str(tmp_path / "c")]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--only got no notebook names; pass e.g. --only 02,04 or omit --only" in err
    assert not (tmp_path / "f").exists() and not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="--only got no notebook names"):
        rp.reproduce(
            "smoke", only=only.split(",") if only else [], figures_dir=tmp_path / "f", progress=False
        )


def test_only_accepts_a_comma_separated_string_or_a_list(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for stem in ("01_one", "02_two", "03_three"):
        _notebook(notebooks / f"{stem}.ipynb", PARAMS, "pass")
    paths = rp.list_notebooks(notebooks)

    def stems(only):
        return [p.stem for p in rp.select_notebooks(paths, only)]

    assert stems(None) == ["01_one", "02_two", "03_three"]
    assert stems("03, one") == stems(["03", "one"]) == stems(["03,one"]) == ["01_one", "03_three"]
    with pytest.raises(ValueError, match="no notebook names"):
        rp.select_notebooks(paths, [])


def test_reproduce_says_resuming_is_the_default(capsys, monkeypatch, tmp_path):
    from pyoco_lab.cli import main
    from pyoco_lab.commands import reproduce as command

    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Resuming is the default" in help_text and "no --resume flag" in help_text
    failure = rp.NotebookFailed("04_alpha_sweep", 3, "ValueError", "boom", "train()", tmp_path / "x.ipynb")
    assert "resumes from its newest checkpoint" in str(failure) and "no flag needed" in str(failure)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "reproduce", interrupted)
    assert main(["reproduce", "--cache", str(tmp_path / "cache")]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resumes" in err and str(tmp_path / "cache") in err


def test_cached_training_runs_are_resumed_not_refused(monkeypatch, tmp_path):
    """reproduce's run folders are keyed by a hash of their config: an unfinished one is the same run."""

    calls = []

    def fake_train(config, out, **kwargs):
        calls.append(kwargs)
        return out

    monkeypatch.setattr(study_runs, "train", fake_train)
    s = presets.settings("smoke")
    study_runs.ensure_run(study_runs.video_run(s, "progressive", 2.0), tmp_path, progress=False)
    assert len(calls) == 2  # the image model, then the finetune
    assert all(call.get("resume") is True for call in calls), calls


def test_reproduce_p_passes_yaml_parameters_to_the_notebooks_that_declare_them(monkeypatch, tmp_path, capsys):
    from pyoco_lab.cli import main
    from pyoco_lab.commands import reproduce as command

    assert command.parse_parameters([["seeds", "[0, 1, 2]"], ["eval_samples", "64"], ["x", "null"]]) == {
        "seeds": [0, 1, 2],
        "eval_samples": 64,
        "x": None,
    }
    with pytest.raises(ValueError, match="Python identifier"):
        command.parse_parameters([["eval-samples", "3"]])
    seen = {}

    def fake_reproduce(preset, **kwargs):
        seen.update(kwargs, preset=preset)
        return tmp_path / "SUMMARY.md"

    monkeypatch.setattr(command, "reproduce", fake_reproduce)
    argv = ["reproduce", "--preset", "smoke", "-p", "seeds", "[0, 1]", "--parameter", "video_steps", "7"]
    assert main([*argv, "--pretrain-image"]) == 0
    assert seen["parameters"] == {"seeds": [0, 1], "video_steps": 7, "pretrain_image": True}
    # through the real reproduce: a name no notebook declares is refused before anything runs (exit 2)
    monkeypatch.setattr(command, "reproduce", rp.reproduce)
    monkeypatch.setattr(rp, "run_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    code = main(["reproduce", "--figures", str(tmp_path / "f"), "-p", "alpah", "2"])
    assert code == 2 and "alpah" in capsys.readouterr().err
    assert rp.default_figures_dir("quick").name == "figures"
    assert rp.default_figures_dir("cpu-long") == rp.default_figures_dir("quick") / "cpu-long"


def test_reproduce_streams_the_kernels_progress_as_it_runs(tmp_path, monkeypatch):
    """Each notebook's own output -- the lab's progress bars included, as text -- reaches the terminal."""
    import io

    monkeypatch.setenv("PYOCO_PROGRESS", "")  # restored (unset) after the test; reproduce sets it
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    progress = (
        "import os\nfrom pyoco_lab.progress import tqdm\n"
        "print('hello from the kernel', os.environ.get('PYOCO_PROGRESS'))\n"
        "for _ in tqdm(range(3), desc='inner training run'):\n    pass"
    )
    _notebook(notebooks / "01_ok.ipynb", PARAMS, progress, WRITE_OK.replace("NAME", "01_ok"))
    stream = io.StringIO()
    rp.reproduce("smoke", figures_dir=tmp_path / "f", notebooks_dir=notebooks, progress=False, stream=stream)
    text = stream.getvalue()
    assert "hello from the kernel text" in text  # text bars in the kernel, not widgets
    assert "inner training run: 100%" in text


@pytest.mark.slow
def test_plan_lines_run_with_torchrun_and_reproduce_then_reuses_the_runs(tmp_path):
    """`reproduce --plan` for the smoke preset: every line runs as written (torchrun, 1 CPU process), into
    the shared cache, and the study then finds each run finished (same config hash, same folder)."""
    import os
    import shlex
    import subprocess
    import sys

    from pyoco_lab.cli import main
    from pyoco_lab.training import checkpoints

    cache, plan_dir = tmp_path / "cache", tmp_path / "plan"
    assert main(["reproduce", "--preset", "smoke", "--cache", str(cache), "--plan", str(plan_dir)]) == 0
    image_lines = (plan_dir / "image_runs.txt").read_text().splitlines()
    video_lines = (plan_dir / "video_runs.txt").read_text().splitlines()
    s = presets.settings("smoke")
    assert len(image_lines) + len(video_lines) == len(study_plans.all_runs(s))
    launch = f"${{PYOCO_PYTHON:-{sys.executable}}} -m torch.distributed.run --standalone --nproc_per_node"
    assert all(
        line.startswith(f"{launch} ${{GPUS:-1}} -m pyoco_lab.cli train")
        for line in [*image_lines, *video_lines]
    )
    submit = (plan_dir / "submit.sh").read_text()
    assert "--dependency=afterok:$image" in submit and f"--array=1-{len(video_lines)}" in submit
    env = {
        **os.environ,
        "GPUS": "1",
        "OMP_NUM_THREADS": "1",
        "PATH": "/usr/bin:/bin",  # the lines name their interpreter: no environment to activate
    }
    for line in image_lines + video_lines:
        subprocess.run(["bash", "-c", line], check=True, env=env, capture_output=True, timeout=300)
    for spec in study_plans.all_runs(s):  # every run of the study is finished in its own folder
        folder = spec.folder(cache)
        assert checkpoints.latest_checkpoint(folder) is not None, spec.label
        assert checkpoints.load_config(folder) == spec.config, spec.label
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.safetensors")}
    for spec in study_plans.all_runs(s):
        study_runs.ensure_run(spec, cache, progress=False)  # found finished: nothing is trained again
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.safetensors")} == before
    assert shlex.split(image_lines[0])[-1] == "--no-progress"
