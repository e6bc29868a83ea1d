"""The explorer as a team meets it (issue #43): how long *Run All* of the explorer notebook takes, and how
long a Generate click and the zoo view take, sampling and then again from the video cache.

    .venv/bin/python benchmarks/bench_explorer.py          # ~2 minutes on 2 idle cores

Run All is the notebook executed headless (papermill, its default parameters: nothing sampled at Run All);
the clicks are the panels' own methods on the shipped zoo (what the buttons call), with a fresh, empty
video cache, then the same setting again. Targets (issue #43): Run All <= 30 s, a cached Generate <= 1 s.
The peer of each cached row is the same action sampling (the row above it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import papermill

from pyoco_lab.training import pretrained
from pyoco_lab.viz import explorer as ex

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "00_explorer.ipynb"


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the zoo view's seeds")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        seconds, _ = timed(
            lambda: papermill.execute_notebook(
                str(NOTEBOOK),
                str(scratch / "out.ipynb"),
                parameters={"output_dir": str(scratch / "figures"), "runs_root": str(scratch / "runs")},
                cwd=str(REPO),
                progress_bar=False,
            )
        )
        rows.append(("Run All of the explorer notebook (papermill, defaults)", seconds, "<= 30 s"))
        cache = ex.VideoCache(scratch / "videos", shipped=None)
        prior = ex.PriorExplorer("progressive", 2.0, num_frames=16, seed=0)
        zoo = [pretrained.PREFIX + m.name for m in pretrained.current_models(phase="video")]
        panel = ex.GeneratePanel(prior, zoo, sampler="deis", num_steps=6, cache=cache)
        panel.run.value = zoo[0]
        seconds, video = timed(panel.generate)
        assert video is not None, panel.status.value
        rows.append((f"Generate {zoo[0]} (DEIS 6, loads the model, samples)", seconds, ""))
        seconds, _ = timed(panel.generate)
        rows.append(("the same Generate again (from the video cache)", seconds, "<= 1 s"))
        view = ex.ZooPanel(
            prior, zoo, cache=ex.VideoCache(scratch / "zoo-videos", shipped=None), seeds=args.seeds
        )
        seconds, shown = timed(view.show)
        assert shown is not None, view.status.value
        rows.append(
            (f"zoo view: {len(zoo)} models x {len(args.seeds)} seeds (samples every clip)", seconds, "")
        )
        fresh = ex.ZooPanel(
            prior, zoo, cache=ex.VideoCache(scratch / "zoo-videos", shipped=None), seeds=args.seeds
        )
        seconds, _ = timed(fresh.show)
        rows.append(("the same zoo view in a new session (from the cache)", seconds, ""))
    width = max(len(r[0]) for r in rows)
    print(f"{'action':<{width}}  {'seconds':>8}  target")
    for name, seconds, target in rows:
        print(f"{name:<{width}}  {seconds:8.2f}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
