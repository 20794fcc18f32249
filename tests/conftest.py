"""Shared fixtures: trained models (synthetic; the tutorial's data when present), a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "games-expand.csv"
TUTORIAL_QUERY = {
    "G1": "1", "G2": "0", "G3": "1", "G4": "1", "G5": "0",
    "G6": "0", "G7": "1", "G8": "0", "G9": "1", "G10": "0",
}  # fmt: skip


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
