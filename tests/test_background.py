"""The test suite as a shell's background job: SIGINT ignored from the start (``nohup ... &``,
``&`` in a script), in a session of its own. Every stop the harness makes must still be prompt
(``bench.process``: a background job's children get SIGINT's default action back)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import process

# A representative set: the stop policy (and its own background test above), the emulator's
# SIGTERM stop, and a power-tuning restore after SIGINT (its children are the emulator and
# python -m bench.powertune, each stopped or signalled by the harness).
SELECTION = (
    "tests/test_process.py",
    "tests/test_resources.py::test_sigterm_removes_every_group",
    "tests/test_powertune.py::test_a_signal_mid_sweep_restores_the_original_configuration",
)
BACKGROUND = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.setsid(); "
    "os.execv(sys.executable, [sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider', "
    "*sys.argv[1:]])"
)


@pytest.mark.slow
def test_the_stop_tests_pass_as_a_background_job_with_sigint_ignored(tmp_path: Path):
    command = [sys.executable, "-c", BACKGROUND, *SELECTION, "--basetemp", str(tmp_path / "base")]
    done = process.run_to_completion(command, tmp_path / "pytest.out", timeout_s=600, name="pytest")
    summary = done.text().strip().splitlines()[-1]
    assert done.returncode == 0, f"{summary} (see {tmp_path / 'pytest.out'})"
    assert " passed" in summary and "failed" not in summary
