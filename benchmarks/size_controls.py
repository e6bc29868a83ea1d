"""How many clips per evaluation a preset needs: do the clip controls separate from real at N?

    .venv/bin/python benchmarks/size_controls.py cpu-32 128 256     # ~3 and ~5 minutes on 2 cores (32 px)

For each N, the preset's metric controls (``experiments.metric_controls``: held-out real clips and five
corruptions of them, one subset per seed of the preset, against the same reference as every generated
evaluation) and, per clip measure, whether every control it must see ranks worse than real with intervals that
exclude a tie (``verdict_rules.control_status``, SUMMARY's rule). A measure that fails at N is not used for
verdicts at N, so a study's N is the smallest that passes. The controls are cached per N under
``runs/sizing/<preset>-n<N>/`` (delete to recompute); nothing is trained.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from pyoco_lab.analysis import experiments, presets, verdict_rules
from pyoco_lab.analysis.notebook import ensure_data
from pyoco_lab.training import default_runs_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=list(presets.SETTINGS))
    parser.add_argument("sizes", type=int, nargs="+", help="clips per evaluation to try")
    args = parser.parse_args(argv)
    for n in args.sizes:
        s = replace(presets.settings(args.preset, eval_samples=n), records_dir=None)
        ensure_data(s)
        start = time.perf_counter()
        controls = experiments.metric_controls(
            s, default_runs_root() / "sizing" / f"{s.name}-n{n}", progress=False
        )
        record = experiments.yardstick_record(controls)
        print(f"N = {n} clips x seeds {list(s.seeds)}: {time.perf_counter() - start:.0f} s", flush=True)
        for measure, status in verdict_rules.control_status(record).items():
            failures = ", ".join(kind for kind, _ in status["failures"])
            print(f"  {measure}: {status['state']}" + (f" ({failures})" if failures else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
