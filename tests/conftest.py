"""Shared fixtures: trained models (synthetic; the tutorial's data when present), a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handler.features import TUTORIAL_QUERY  # noqa: F401  (re-exported for the tests)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "games-expand.csv"


def run_module(*args: str, cwd: Path = PROJECT_ROOT, env: dict | None = None, timeout: float = 300):
    """Run ``python -m ...`` in a subprocess, as a user would; returns CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """Models trained on the seeded synthetic data, once per test session."""
    out = tmp_path_factory.mktemp("models") / "models"
    completed = run_module("training", "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    return out


@pytest.fixture(scope="session")
def real_models_dir(tmp_path_factory) -> Path:
    """Models trained on the tutorial's own data; the test is skipped when it is absent."""
    if not SHARED_DATA.is_file():
        pytest.skip(f"the tutorial's data set is not at {SHARED_DATA} (../shared/data)")
    out = tmp_path_factory.mktemp("real") / "models"
    completed = run_module("training", "--data", str(SHARED_DATA), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    return out


class RunningEmulator:
    """A ``python -m handler.serve`` process on 127.0.0.1, with its base URL and log file."""

    def __init__(self, process: subprocess.Popen, base_url: str, log_file: Path, pumps: list) -> None:
        self.process = process
        self.pumps = pumps
        self.base_url = base_url
        self.log_file = log_file

    def url(self, function: str, query: str = "") -> str:
        return f"{self.base_url}/staging/{function}" + (f"?{query}" if query else "")

    def children(self) -> list:
        import psutil

        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, timeout: float = 20) -> list:
        """SIGTERM, wait; returns the environment processes still alive afterwards (none, we hope)."""
        import signal as signal_module

        import psutil

        children = self.children()
        if self.process.poll() is None:
            self.process.send_signal(signal_module.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for thread in self.pumps:
            thread.join(5)
        _gone, alive = psutil.wait_procs(children, timeout=5)
        for process in alive:
            process.kill()
        return alive


def start_emulator(
    *args: str, config: Path | None = None, log_file: Path, models: Path | None = None
) -> RunningEmulator:
    import queue
    import threading

    command = [sys.executable, "-m", "handler.serve", "--port", "0", "--quiet"]
    command += ["--log-file", str(log_file)]
    if config is not None:
        command += ["--config", str(config)]
    if models is not None:
        command += ["--models", str(models)]
    process = subprocess.Popen(
        [*command, *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    lines: list[str] = []
    received: queue.Queue[str] = queue.Queue()

    def pump(stream, sink: queue.Queue | None) -> None:  # drains the pipe for the process's life
        for text in stream:
            if sink is not None:
                sink.put(text)
        if sink is not None:
            sink.put("")
        stream.close()

    pumps = [
        threading.Thread(target=pump, args=(process.stdout, received), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, None), daemon=True),
    ]
    for thread in pumps:
        thread.start()
    while True:
        try:
            line = received.get(timeout=30)
        except queue.Empty:
            line = ""
        if not line:
            process.kill()
            process.wait(5)
            for thread in pumps:
                thread.join(5)
            raise RuntimeError(f"emulator did not start: {lines}")
        lines.append(line)
        if line.startswith("log:"):
            break
    base_url = lines[0].rsplit(" on ", 1)[1].strip()
    return RunningEmulator(process, base_url, log_file, pumps)


@pytest.fixture(scope="module")
def emulator(models_dir, tmp_path_factory):
    """The emulator with tests/emulator.toml (real handlers and misbehaving ones)."""
    log_file = tmp_path_factory.mktemp("emulator") / "emulator.log"
    running = start_emulator(
        config=PROJECT_ROOT / "tests" / "emulator.toml", log_file=log_file, models=models_dir
    )
    try:
        yield running
    finally:
        assert running.stop() == [], "environment processes outlived the emulator"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """A real ``moto_server`` process on 127.0.0.1, stopped by PID at the end; yields its URL."""
    import time
    import urllib.request

    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
