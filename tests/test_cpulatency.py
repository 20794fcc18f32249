"""The CPU latency limit: packing and reading against a stand-in file, the real device when it
can be written, and ``handler.serve --low-latency`` holding it for exactly its lifetime."""

from __future__ import annotations

import os
import struct

import pytest

from bench.results import cpu_idle_phrase as describe_phrase
from handler.local import cpulatency
from handler.local.cpulatency import NO_LIMIT, CpuLatencyUnavailable, effective_limit_us, held


def _device_writable() -> bool:
    return os.access(cpulatency.DEVICE, os.W_OK)


def test_held_writes_the_limit_as_a_native_32_bit_integer(tmp_path):
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    with held(25, device=device):
        assert struct.unpack("=i", device.read_bytes()) == (25,)
        assert effective_limit_us(device) == 25


def test_an_unopenable_device_is_a_one_line_error(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(CpuLatencyUnavailable, match=r"cannot open .*missing: No such file"), held(0, missing):
        pass
    with pytest.raises(ValueError, match="must be >= 0"), held(-1, missing):
        pass
    assert effective_limit_us(tmp_path / "missing") is None


def test_phrase_says_which_regime_a_result_was_measured_in():
    assert describe_phrase({}) == "CPU idle regime not recorded"
    base = {"cpuidle_driver": "haltpoll", "latency_limit_readable": True}
    assert describe_phrase({**base, "latency_limit_us": None}) == "cpuidle haltpoll, CPU latency limit none"
    assert describe_phrase({**base, "latency_limit_us": 0}) == "cpuidle haltpoll, CPU latency limit 0 µs"
    unreadable = {"cpuidle_driver": None, "latency_limit_readable": False, "latency_limit_us": None}
    assert describe_phrase(unreadable) == "cpuidle no cpuidle driver, CPU latency limit unknown"


@pytest.mark.skipif(not _device_writable(), reason=f"{cpulatency.DEVICE} is not writable here (needs root)")
def test_the_real_limit_holds_while_the_file_is_open():
    before = effective_limit_us()
    with held(0):
        assert effective_limit_us() == 0
        assert cpulatency.describe()["latency_limit_us"] == 0
    assert effective_limit_us() == before


@pytest.mark.skipif(not _device_writable(), reason=f"{cpulatency.DEVICE} is not writable here (needs root)")
@pytest.mark.slow
def test_serve_low_latency_holds_the_limit_for_its_lifetime(models_dir, tmp_path):
    from tests.conftest import start_emulator

    before = effective_limit_us()
    assert before == NO_LIMIT, "another process holds a CPU latency limit; this test needs none"
    running = start_emulator(
        "--low-latency", "--functions", "logit-lean", log_file=tmp_path / "e.log", models=models_dir
    )
    try:
        assert effective_limit_us() == 0
    finally:
        assert running.stop() == []
    assert running.process.returncode == 0
    assert effective_limit_us() == NO_LIMIT


def test_serve_low_latency_without_the_device_is_exit_2(monkeypatch, tmp_path, capsys):
    from handler.local import serve

    monkeypatch.setattr(cpulatency, "DEVICE", tmp_path / "missing")
    assert serve.main(["--low-latency", "--port", "0", "--log-file", str(tmp_path / "e.log")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: --low-latency: cannot open ") and "\n" not in error


def test_pipeline_low_latency_without_the_device_is_exit_2(monkeypatch, tmp_path, capsys):
    from bench import __main__ as pipeline_cli

    monkeypatch.setattr(cpulatency, "DEVICE", tmp_path / "missing")
    with pytest.raises(SystemExit) as exit_info:
        pipeline_cli.main(["--quick", "--low-latency", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "--low-latency: " in capsys.readouterr().err and not (tmp_path / "run").exists()
