"""The local emulator (``python -m handler.serve``) as a child process the pipeline owns.

Started on a free loopback port with its output in a file; ready once it has printed its
``log:`` line. Stopped with SIGINT (it drains, then stops its environments), then SIGKILL
after a grace period, and every process it started is reaped by PID, so nothing outlives it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.results import PROJECT_ROOT

READY_TIMEOUT_S = 60.0


class EmulatorError(RuntimeError):
    """The emulator did not start; the message says why in one line."""


@dataclass
class EmulatorProcess:
    process: subprocess.Popen
    base_url: str
    output: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


def _wait_ready(process: subprocess.Popen, output: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = output.read_text(encoding="utf-8", errors="replace") if output.exists() else ""
        lines = text.splitlines()
        if any(line.startswith("log:") for line in lines):
            first = next(line for line in lines if line.startswith("emulator:"))
            return first.rsplit(" on ", 1)[1].strip()
        if process.poll() is not None:
            tail = (lines or ["(no output)"])[-1]
            raise EmulatorError(f"the emulator exited with {process.returncode}: {tail}")
        time.sleep(0.05)
    raise EmulatorError(f"the emulator did not start within {timeout_s:g} s (see {output})")


def stop(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGINT, then SIGKILL; then every descendant still alive, by PID."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(descendants, timeout=5)


@contextlib.contextmanager
def running_emulator(
    models: Path | None, log_dir: Path, *extra_args: str, ready_timeout_s: float = READY_TIMEOUT_S
) -> Iterator[EmulatorProcess]:
    log_dir.mkdir(parents=True, exist_ok=True)
    output = log_dir / "emulator.out"
    command = [sys.executable, "-m", "handler.serve", "--port", "0", "--quiet"]
    command += ["--models", str(models)] if models is not None else []
    command += ["--log-file", str(log_dir / "emulator.log"), *extra_args]
    with open(output, "w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        base_url = _wait_ready(process, output, ready_timeout_s)
        yield EmulatorProcess(process, base_url, output)
    finally:
        stop(process)
