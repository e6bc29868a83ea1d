"""End to end in a real browser: JupyterLab + headless Chromium run the explorer notebook.

Starts JupyterLab on loopback with a token (from this venv, so its kernel is this venv's
Python), drives Debian's /usr/bin/chromium through Playwright (no browser download), runs every
cell, moves the alpha slider by typing into its readout, and checks that the correlation the
explorer shows follows the closed form of eq. 4. A screenshot lands in ``test-artifacts/``.

Without Chromium the test skips locally but FAILS under CI (``CI`` set), so the browser check can
never silently vanish there: ``make browser`` (.ci/install-debian.sh) installs it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "00_explorer.ipynb"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("PYOCO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _require_browser():
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (run make browser)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -c constraints.txt playwright)")
    if shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
        missing.append("jupyterlab in this venv (pip install -c constraints.txt jupyterlab)")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " -- CI must run this test, so this is an error, not a skip")
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path):
    """JupyterLab without trained runs (Generate disabled; the notebook runs in seconds)."""
    with _jupyter_lab(tmp_path, tmp_path / "no-runs") as server:
        yield server


@contextlib.contextmanager
def _jupyter_lab(tmp_path, runs_root, parameters: dict | None = None):
    """A JupyterLab server on 127.0.0.1 serving a copy of the explorer notebook; yields (URL, token).

    ``parameters`` are appended to the copy's ``parameters`` cell, as papermill would inject them.
    """
    import nbformat

    _require_browser()
    root = tmp_path / "lab"
    root.mkdir()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    if parameters:
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        cell.source += "\n" + "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    nbformat.write(notebook, root / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        # The kernel imports this checkout and finds runs only under runs_root; all Jupyter
        # state stays inside tmp_path.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "PYOCO_RUNS": str(runs_root),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    command = [
        str(Path(sys.executable).parent / "jupyter-lab"),
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    # Lab settings for a test: render every cell (JupyterLab 4 otherwise virtualises cells out of
    # view, so the widget would be missing from the DOM) and never ask about fetching news.
    settings = tmp_path / "lab-settings" / "@jupyterlab"
    for plugin, values in {
        "notebook-extension/tracker": {"windowingMode": "none"},
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    command.append(f"--LabApp.user_settings_dir={settings.parent}")
    log = open(tmp_path / "jupyter.log", "w")  # noqa: SIM115 -- closed in the finally below
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "JupyterLab did not start:\n" + (tmp_path / "jupyter.log").read_text()[-3000:]
                    )
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _state(page) -> dict:
    return json.loads(page.locator(".pyoco-readout .pyoco-state").first.get_attribute("data-state"))


def _wait_for_state(page, predicate, what: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    state = {}
    while time.monotonic() < deadline:
        state = _state(page)
        if predicate(state):
            return state
        page.wait_for_timeout(200)
    pytest.fail(f"explorer never showed {what}; last state {state}")


def _run_all_cells(page, attempts: int = 4) -> None:
    """Run > Run All Cells, retried while the kernel is still connecting (the first click can be lost)."""
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=60_000)
    first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for _ in range(attempts):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "[" in first_prompt.inner_text().replace("[ ]", ""):  # "[*]" or "[1]": it started
                return
            page.wait_for_timeout(250)
    pytest.fail(f"Run All Cells never started the notebook ({attempts} tries)")


def test_explorer_runs_and_alpha_slider_updates_correlation(jupyter_lab):
    from playwright.sync_api import sync_playwright

    base, token = jupyter_lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", timeout=60_000)
            page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
            _run_all_cells(page)
            page.locator(".pyoco-readout .pyoco-state").first.wait_for(state="attached", timeout=90_000)
            # Done when every code cell has an execution count and the kernel is idle again.
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                        .every(p => /\\[\\d+\\]/.test(p.textContent))""",
                timeout=90_000,
            )
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=90_000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            assert not tracebacks, f"notebook raised: {tracebacks}"

            # Notebook defaults: progressive, alpha = 2 -> adjacent-frame corr 2/sqrt(5) (eq. 4).
            state = _state(page)
            # (The log slider snaps alpha to its grid of 10^(k/1000): within 0.12 %.)
            assert state["kind"] == "progressive" and state["alpha"] == pytest.approx(2.0, rel=2e-3)
            assert state["adjacent_closed"] == pytest.approx(2 / math.sqrt(5), abs=1e-3)
            before = state["updated"]

            # Move alpha to 0.5 by typing into the slider's readout (deterministic, unlike dragging).
            slider = page.locator(".widget-hslider", has=page.locator("label", has_text="alpha")).first
            field = slider.locator(".widget-readout")
            field.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("0.5")
            page.keyboard.press("Enter")
            state = _wait_for_state(
                page, lambda s: s["updated"] != before and abs(s["alpha"] - 0.5) < 0.01, "alpha = 0.5"
            )
            assert state["alpha"] == pytest.approx(0.5, rel=2e-3)
            expected = state["alpha"] / math.sqrt(1 + state["alpha"] ** 2)
            assert state["adjacent_closed"] == pytest.approx(expected, abs=1e-6)
            # Empirical estimate from 4*3*32*32 = 12288 values per frame: std of a correlation
            # estimate is about (1 - r^2)/sqrt(n) < 0.01, so 0.05 is a > 5 sigma margin.
            assert state["adjacent_empirical"] == pytest.approx(expected, abs=0.05)

            # The plotly heatmap in the page shows the new matrix too: its hover data is the DOM's.
            heat = page.evaluate(
                """() => {
                    const plots = [...document.querySelectorAll('.js-plotly-plot')];
                    const first = p => p.data && p.data[0] && p.data[0].z && p.data[0].z[0];
                    return plots.map(p => first(p) ? p.data[0].z[0][1] : null);
                }"""
            )
            assert any(v is not None and abs(v - expected) < 1e-6 for v in heat), heat

            # The infinity end of the alpha range: identical frames, correlation exactly 1.
            page.locator(".widget-toggle-button", has_text="α = ∞").first.click()
            state = _wait_for_state(page, lambda s: s["alpha"] == "inf", "alpha = inf")
            assert state["adjacent_closed"] == 1.0 and state["adjacent_empirical"] == pytest.approx(1.0)

            # Back to the slider for the screenshot (a readable, non-degenerate prior).
            field.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("2")
            page.keyboard.press("Enter")
            _wait_for_state(page, lambda s: s["alpha"] != "inf", "alpha back on the slider")
            page.locator(".pyoco-readout").first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "explorer.png"))
        except BaseException:
            # What the browser showed when it failed: the first thing to look at in CI artefacts.
            page.screenshot(path=str(ARTIFACTS / "explorer-failure.png"), full_page=True)
            (ARTIFACTS / "explorer-failure.html").write_text(page.content())
            raise
        finally:
            browser.close()
    assert (ARTIFACTS / "explorer.png").stat().st_size > 10_000


@pytest.mark.slow
def test_generate_button_plays_a_video_from_a_shipped_zoo_model(tmp_path):
    """No training: pick the shipped progressive alpha = 2 finetune of the alpha zoo (issue #24) in the
    generate tab, press Generate in the browser and see a video sampled with that model's own prior."""
    _require_browser()
    runs = tmp_path / "runs"  # empty: the zoo is all there is to generate from
    runs.mkdir()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    # The notebook's own headless generation (18 steps, a 5-video gallery) is skipped: the button is tested.
    lab = _jupyter_lab(
        tmp_path, runs, {"run_models": False, "num_steps": 2, "sampler": "euler", "zoo_seeds": [0, 1]}
    )
    with lab as (base, token), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", timeout=60_000)
            page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
            _run_all_cells(page)
            page.locator(".pyoco-readout .pyoco-state").first.wait_for(state="attached", timeout=90_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=60_000)
            assert page.locator(".pyoco-generated img").count() == 0
            # A new seed on the prior tab, then Generate on the generate tab.
            seed = page.locator(".widget-inline-hbox", has=page.locator("label", has_text="seed")).first
            seed.locator("input").fill("7")
            seed.locator("input").press("Enter")
            _wait_for_state(page, lambda s: s["seed"] == 7, "seed = 7")
            page.locator(".lm-TabBar-tabLabel", has_text="generate").first.click()
            zoo = "pretrained:zoo-32-progressive-2"
            page.locator("select", has=page.locator("option", has_text=zoo)).first.select_option(label=zoo)
            page.locator(".pyoco-run-prior", has_text="progressive, α = 2").first.wait_for(timeout=30_000)
            generate = page.locator("button", has_text="Generate").first
            generate.wait_for(timeout=10_000)
            generate.click()
            video = page.locator(".pyoco-generated img").first
            video.wait_for(state="attached", timeout=90_000)
            assert video.get_attribute("src").startswith("data:image/gif;base64,")
            caption = page.locator(".pyoco-generated").first.inner_text()
            assert "the run's own prior: progressive, α = 2, euler × 2" in caption
            page.locator(".pyoco-generated").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "explorer-generate.png"))
            # The zoo tab: every shipped video model side by side, each row labelled with what it was
            # trained and sampled with; then one prior for all (the prior tab's) relabels every row.
            page.locator(".lm-TabBar-tabLabel", has_text="zoo").first.click()
            page.locator("button", has_text="Show the zoo").first.click()
            grid = page.locator(".pyoco-zoo img").first
            grid.wait_for(state="attached", timeout=180_000)
            text = page.locator(".pyoco-zoo").first.inner_text()
            for model in ("zoo-32-highsigma-iid", "zoo-32-highsigma-mixed-1", "zoo-32-highsigma-inf"):
                assert model in text, text
            assert "zoo-32-highsigma-iid: trained and sampled with i.i.d." in text
            assert (
                "zoo-32-highsigma-mixed-1: trained with mixed, α = 1; sampled with progressive, α = 2.5"
                in text
            )
            page.locator(".pyoco-zoo").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "explorer-zoo.png"))
            # Change the sampling alpha: one prior for all, the prior tab's, moved to 5 there.
            page.locator("button", has_text="one prior for all").first.click()
            page.locator(".lm-TabBar-tabLabel", has_text="noise prior").first.click()
            slider = page.locator(".widget-hslider", has=page.locator("label", has_text="alpha")).first
            slider.locator(".widget-readout").click()
            page.keyboard.press("Control+A")
            page.keyboard.type("5")
            page.keyboard.press("Enter")
            _wait_for_state(page, lambda s: abs(s["alpha"] - 5) < 0.01, "alpha = 5")
            page.locator(".lm-TabBar-tabLabel", has_text="zoo").first.click()
            page.locator("button", has_text="Show the zoo").first.click()
            relabelled = "zoo-32-highsigma-iid: trained with i.i.d.; sampled with progressive, α = 5"
            page.locator(".pyoco-zoo", has_text=relabelled).first.wait_for(timeout=180_000)
            text = page.locator(".pyoco-zoo").first.inner_text()
            mixed = "zoo-32-highsigma-mixed-1: trained with mixed, α = 1; sampled with progressive, α = 5"
            assert mixed in text, text
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "explorer-generate-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
