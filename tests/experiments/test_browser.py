"""`rnnlab ui` and the report as a person sees them: the MLflow UI started by the CLI on a free port
against a small store, its runs table and a run page loaded in headless Chromium, the HTML report
too; then SIGTERM to `rnnlab ui` must leave no server or worker running.

Needs Debian's `chromium` (`.ci/run` installs it); without it the browser tests are skipped, unless
$RNNLAB_REQUIRE_BROWSER is set (CI), where they fail."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from experiments.recording import views

pytestmark = pytest.mark.slow  # a server start and three page loads: about a minute here

SHOTS = Path(os.environ.get("RNNLAB_SCREENSHOTS", "/tmp/rnnlab-screenshots"))


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("RNNLAB_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def browse(url: str, tmp_path: Path, shot: str, budget_ms: int = 20000,
           window: str = "1400,1000") -> str:
    """The DOM of `url` after `budget_ms` of virtual time in headless Chromium; a screenshot of
    the same page goes to $RNNLAB_SCREENSHOTS/<shot>.png."""
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--no-first-run",
             f"--window-size={window}", f"--virtual-time-budget={budget_ms}"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    dom = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'dom'}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=180, check=True).stdout
    subprocess.run([*flags, f"--user-data-dir={tmp_path / 'shot'}",
                    f"--screenshot={SHOTS / shot}.png", url],
                   capture_output=True, timeout=180, check=False)
    return dom


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UI:
    """`rnnlab ui` started in a subprocess; `address` is what its "MLflow UI: " line says."""

    def __init__(self, uri: str, port: int):
        rnnlab = [sys.executable, "-m", "experiments.cli", "ui", "--port", str(port)]
        self.port = port
        self.process = subprocess.Popen(
            rnnlab, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "MLFLOW_TRACKING_URI": uri}, cwd=Path(__file__).parents[2])
        self.output: list[str] = []  # the server's own lines before it; read on after it too
        for line in self.process.stdout:
            if line.startswith("MLflow UI: "):
                break
            self.output.append(line)
        self.address = line.strip().removeprefix("MLflow UI: ")
        self.answered_when_printed = answers(port)
        threading.Thread(target=lambda: self.output.extend(self.process.stdout), daemon=True).start()

    def wait_until_serving(self, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while not answers(self.port):
            assert self.process.poll() is None, "".join(self.output)
            assert time.monotonic() < deadline, f"the MLflow UI did not answer on port {self.port}"
            time.sleep(1)

    def descendants(self) -> list[psutil.Process]:
        """Every live process descended from `rnnlab ui`, whatever its process group."""
        return psutil.Process(self.process.pid).children(recursive=True)


@pytest.fixture(scope="module")
def ui(fake_store):
    uri, _, _ = fake_store
    server = UI(uri, free_port())
    try:
        server.wait_until_serving()
        yield server
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=60)


def test_ui_prints_the_runs_table_of_the_experiment(ui, fake_store):
    _, experiment_id, _ = fake_store
    assert ui.address == (f"http://127.0.0.1:{ui.port}/#/experiments/{experiment_id}/runs?"
                          f"workflowType=machine_learning&viewStateShareKey={views.VIEW_KEY}")
    assert ui.answered_when_printed, "the address was printed before the server answered"


def test_runs_table_in_a_browser_opens_on_the_comparison(ui, tmp_path):
    # a desktop's window: the table draws only the columns in view, and MLflow's assistant panel
    # takes a third of a narrower one
    dom = browse(ui.address, tmp_path, "mlflow_runs", window="1920,1000")
    for name in ("demo", "adding-lstm-0", "adding-lstm-1", "adding-gru-0", "multi30k-gru-0"):
        assert name in dom  # the children too, not folded under "demo"
    # the view's columns: the key test metrics of the tasks in the store, who each run is
    for header in ("test_mse", "test_bleu", "rnnlab.task", "rnnlab.cell", "data.length",
                   "train.seed", "rnnlab.status"):
        assert header in dom, header
    assert "0.166" in dom  # a metric's value in the table, not only its header
    assert "rnnlab: compare cells" in dom  # the view, named in the page's Views menu


def test_run_page_in_a_browser(ui, fake_store, tmp_path):
    ids = fake_store[2]
    dom = browse(ui.address.partition("?")[0] + f"/{ids['adding-gru-0']}", tmp_path,
                 "mlflow_run")
    assert "adding-gru-0" in dom and "test_mse" in dom and "0.166" in dom


def test_sigterm_stops_every_process_the_ui_started(ui):
    family = ui.descendants()
    assert family, "no MLflow server process found under rnnlab ui"
    ui.process.send_signal(signal.SIGTERM)
    assert ui.process.wait(timeout=60) == 0
    _, alive = psutil.wait_procs(family, timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], \
        [(p.pid, p.cmdline()) for p in alive]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{ui.port}/health", timeout=5)


def test_report_page_in_a_browser(fake_store, tmp_path, monkeypatch):
    from experiments.analysis import report

    uri, experiment_id, ids = fake_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    report.write_report("demo", tmp_path / "report")
    dom = browse((tmp_path / "report" / "summary.html").as_uri(), tmp_path, "report", 3000)
    assert "adding (T=50)" in dom and "0.008 ± 0.0057" in dom and "at chance (1/1)" in dom
    assert f"#/experiments/{experiment_id}/runs/{ids['adding-gru-0']}" in dom
    assert dom.count("data:image/png;base64,") >= 3
