"""bench.process (start, readiness, the stop policy) with tiny Python children, and the one
Locust command line (bench.load.command), built without running it."""

from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from bench import process
from bench.load.command import LOCUSTFILE, LocustCommand
from handler.local.process import PeakRss


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_ready_returns_what_the_check_found_and_the_output_starts_with_the_command(tmp_path: Path):
    code = "import time; print('warming', flush=True); print('ready: 42', flush=True); time.sleep(30)"
    with process.start(python(code), tmp_path / "out", ready=process.line_with("ready: ")) as child:
        assert child.ready == "ready: 42"
        assert child.returncode is None
    assert child.returncode == -signal.SIGINT  # stopped by the policy: SIGINT first
    assert (tmp_path / "out").read_text().startswith(f"$ {sys.executable} -c ")
    assert child.text().splitlines()[:2] == ["warming", "ready: 42"]  # then KeyboardInterrupt


def test_a_child_that_dies_before_it_is_ready_is_one_line_with_its_last_words(tmp_path: Path):
    code = "import sys; print('loading'); sys.exit('error: no model at /nowhere')"
    with pytest.raises(process.ChildError) as error:
        process.start(python(code), tmp_path / "out", name="the server", ready=process.line_with("ready"))
    assert str(error.value) == "the server exited with 1: error: no model at /nowhere"


def test_a_child_not_ready_in_time_is_stopped_and_named(tmp_path: Path):
    code = "import time; print('still loading', flush=True); time.sleep(30)"
    started = time.monotonic()
    with pytest.raises(
        process.ChildError, match=r"^slow was not ready within 0.3 s: still loading \(output: "
    ):
        process.start(
            python(code), tmp_path / "out", name="slow", ready=lambda child: False, ready_timeout_s=0.3
        )
    assert time.monotonic() - started < 5  # SIGINT ended it; no grace period spent


def test_sigint_ignored_means_sigkill_after_the_grace(tmp_path: Path):
    code = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True)"
    code += "; time.sleep(30)"
    child = process.start(python(code), tmp_path / "out", ready=process.line_with("up"))
    started = time.monotonic()
    assert child.stop(grace_s=0.3) == []
    assert child.returncode == -signal.SIGKILL
    assert 0.3 <= time.monotonic() - started < 5
    assert child.stop() == []  # again: nothing to do


@pytest.fixture
def sigint_ignored():
    """This process as a shell's background job starts: SIGINT ignored (restored after)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_background_jobs_children_get_sigint_back_and_stop_on_it_at_once(tmp_path: Path, sigint_ignored):
    code = "import signal, time; print(signal.getsignal(signal.SIGINT).__name__, flush=True); time.sleep(30)"
    child = process.start(python(code), tmp_path / "out", ready=process.line_with("default_int_handler"))
    started = time.monotonic()
    assert child.stop(grace_s=30) == []
    assert child.returncode == -signal.SIGINT  # KeyboardInterrupt, not the SIGKILL after 30 s
    assert time.monotonic() - started < 5


def test_children_get_sigint_back_without_a_step_in_the_child_from_the_main_thread(sigint_ignored):
    with process.sigint_default_for_children() as preexec:
        assert preexec is None  # caught for the spawn: exec resets it; vfork's speed kept
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # ignored again after
    with ThreadPoolExecutor(1) as other:  # no handler can be set there: a step in the child
        assert other.submit(lambda: process.sigint_default_for_children().__enter__()).result() is not None


@pytest.mark.slow  # ~1 s more: here PID 1 takes that long to reap a killed orphan
def test_descendants_that_outlive_the_child_are_killed_by_pid_and_returned(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(process, "LEFTOVER_WAIT_S", 0.3)
    orphan = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(30)"
    code = (
        "import subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', {orphan!r}]); print('up', flush=True); time.sleep(30)"
    )
    child = process.start(python(code), tmp_path / "out", ready=process.line_with("up"))
    (grandchild,) = child.descendants()
    left = child.stop()
    assert [found.pid for found in left] == [grandchild.pid]
    assert not psutil.pid_exists(grandchild.pid) or grandchild.status() == psutil.STATUS_ZOMBIE


def test_run_to_completion_keeps_stdout_and_stderr_apart_and_a_timeout_stops_the_child(tmp_path: Path):
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    done = process.run_to_completion(python(code), tmp_path / "o", 30, stderr=tmp_path / "e")
    assert (done.returncode, done.text(), (tmp_path / "e").read_text(), done.tail()) == (
        3,
        "out\n",
        "err\n",
        "err",
    )
    with pytest.raises(process.ChildError, match=r"^sleeper: did not finish within 0.2 s"):
        process.run_to_completion(python("import time; time.sleep(30)"), tmp_path / "o", 0.2, name="sleeper")


def test_the_locust_command_passes_only_what_is_set():
    bare = LocustCommand("http://127.0.0.1:3000")
    assert bare.argv() == [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--host", "http://127.0.0.1:3000",
    ]  # fmt: skip
    full = LocustCommand(
        "http://h", ("staging/a", "staging/b:2"), Path("r.json"), users=2, spawn_rate=2, run_time_s=6,
        target_ms=0.5, models=Path("m"), scenario="step", steps=3, step_time_s=1.5, arrival="open",
        rate=100.0, max_inflight=1, verify=True, headless=False, only_summary=False,
        extra=("--web-port", "0"),
    )  # fmt: skip
    assert full.argv()[5:] == [
        "--host", "http://h", "--function", "staging/a", "--function", "staging/b:2",
        "-u", "2", "-r", "2", "-t", "6s", "--results", "r.json", "--target-ms", "0.5", "--models", "m",
        "--scenario", "step", "--steps", "3", "--step-time", "1.5", "--arrival", "open", "--rate", "100",
        "--max-inflight", "1", "--verify", "--web-port", "0",
    ]  # fmt: skip


@pytest.mark.parametrize("run_time_s", [0, 2.5])
def test_locust_takes_whole_seconds_only(run_time_s):
    with pytest.raises(ValueError, match="whole number of seconds"):
        LocustCommand("http://h", run_time_s=run_time_s)


def test_peak_rss_answers_a_reading_again_within_its_window_and_reads_after_it():
    """handler.local.process.PeakRss: an invocation's end reads Max Memory Used twice within
    microseconds; the second is the first's answer, a reading past the window is a new one."""
    now = [0]
    meter = PeakRss(os.getpid(), reuse_ns=1_000, clock=lambda: now[0])
    try:
        first = meter.mb()
        assert first > 0
        grown = bytearray(64 * 2**20)  # touched: the peak resident set grows by 64 MiB
        grown[::4096] = b"x" * len(grown[::4096])
        now[0] = 1_000
        assert meter.mb() == first  # within the window: not read again
        now[0] = 1_001
        assert meter.mb() >= first + 60  # past it: read, and the growth is seen
        del grown
    finally:
        meter.close()
