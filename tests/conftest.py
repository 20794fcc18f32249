"""Shared fixtures: trained models (synthetic; the tutorial's data when present), a CLI runner."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import boto3
import pytest
from botocore.config import Config

from bench import process
from bench.process import Child, EmulatorProcess, run_to_completion
from handler.features import TUTORIAL_QUERY  # noqa: F401  (re-exported for the tests)

T = TypeVar("T")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "games-expand.csv"


def run_command(command: list[str], cwd: Path = PROJECT_ROOT, env: dict | None = None, timeout: float = 300):
    """Run ``command`` to completion; returns CompletedProcess (text stdout and stderr apart).
    Started and stopped by ``bench.process``: on a timeout the child and everything it started
    are stopped and ChildError is raised."""
    with tempfile.TemporaryDirectory(prefix="run-command-") as folder:
        stdout, stderr = Path(folder) / "stdout", Path(folder) / "stderr"
        child = run_to_completion(command, stdout, timeout, cwd=cwd, env=env or {}, stderr=stderr)
        errors = stderr.read_text(encoding="utf-8", errors="replace")
        return subprocess.CompletedProcess(command, child.process.returncode, child.text(), errors)


def run_module(*args: str, cwd: Path = PROJECT_ROOT, env: dict | None = None, timeout: float = 300):
    """Run ``python -m ...`` in a subprocess, as a user would (:func:`run_command`)."""
    return run_command([sys.executable, "-m", *args], cwd=cwd, env=env, timeout=timeout)


TRAINING = pytest.StashKey[Child]()


def _start_training(config: pytest.Config) -> Child:
    folder = Path(tempfile.mkdtemp(prefix="pytest-models-"))
    command = [sys.executable, "-m", "training", "--out", str(folder / "models")]
    config.stash[TRAINING] = process.start(command, folder / "training.out", name="python -m training")
    return config.stash[TRAINING]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Train the session's models (``models_dir``) while the tests are being collected: the
    ~4 s of ``python -m training`` then overlap collection instead of delaying the first test."""
    if not session.config.option.collectonly:
        _start_training(session.config)


def _stop_training(config: pytest.Config) -> None:
    training = config.stash.get(TRAINING, None)
    if training is not None:
        training.stop()
        shutil.rmtree(training.output.parent, ignore_errors=True)
        del config.stash[TRAINING]


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any("models_dir" in item.fixturenames for item in session.items):
        _stop_training(session.config)  # no selected test needs it


def pytest_sessionfinish(session: pytest.Session) -> None:
    _stop_training(session.config)


@pytest.fixture(scope="session")
def models_dir(request: pytest.FixtureRequest) -> Path:
    """Models trained on the seeded synthetic data, once per test session (started at session
    start, see :func:`pytest_sessionstart`)."""
    training = request.config.stash.get(TRAINING, None) or _start_training(request.config)
    assert training.wait(300) == 0, training.text()[-3000:]
    return training.output.parent / "models"


@pytest.fixture(scope="session")
def real_models_dir(tmp_path_factory) -> Path:
    """Models trained on the tutorial's own data; the test is skipped when it is absent."""
    if not SHARED_DATA.is_file():
        pytest.skip(f"the tutorial's data set is not at {SHARED_DATA} (../shared/data)")
    out = tmp_path_factory.mktemp("real") / "models"
    completed = run_module("training", "--data", str(SHARED_DATA), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    return out


AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def lambda_client(base_url: str, read_timeout_s: float = 40):
    """A boto3 Lambda client for an emulator at ``base_url``: test credentials, no retries."""
    return boto3.client(
        "lambda",
        endpoint_url=base_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout_s),
    )


RunningEmulator = EmulatorProcess  # the name the tests know


def start_emulator(
    *args: str, config: Path | None = None, log_file: Path, models: Path | None = None
) -> RunningEmulator:
    """``python -m handler.serve`` with test AWS credentials, ready; its output beside ``log_file``."""
    config_args = ("--config", str(config)) if config is not None else ()
    return process.start_emulator(models, log_file, *config_args, *args, env=AWS_TEST_ENV)


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


def wait_for(predicate: Callable[[], T], timeout: float, what: str, poll_s: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail the test,
    naming ``what`` was awaited, if ``timeout`` seconds pass first. Tests wait for the thing
    itself (a file, a figure, a process), never a fixed time that a busy machine outruns."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what}", pytrace=False)
        time.sleep(poll_s)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """A real ``moto_server`` process on 127.0.0.1, stopped by PID at the end; yields its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with process.start(command, log, name="moto_server", ready=process.url_answers(f"{url}/moto-api/")):
        yield url
