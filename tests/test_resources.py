"""Lambda's resource limits in the emulator: memory, CPU share, freeze, /tmp, contention, cleanup.

Pure rules first (the EMULATOR line, the contention verdict, the init-timeout rule, /tmp
placement), then each contract once on real emulators over 127.0.0.1 running
``bench/hardening/faultfunctions/resourceful.py``. Tests that need cgroups skip, with the
reason, where none works (not root, no controllers); with REQUIRE_CGROUPS=1 they fail instead.
Every emulator is stopped by PID in a ``finally`` and must leave no process and no group behind.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from bench.reportline import parse_report
from handler.local import cgroups, resources, spawner, supervisor
from handler.local.config import EmulatorConfig
from handler.local.contention import Phase, contention
from handler.local.ephemeral import TmpRoot
from handler.local.lifecycle import INIT_CAP, Lifecycle, Timeouts, init_allowance_ns
from handler.local.reportline import EmulatorLine
from handler.local.resources import ResourceModel
from tests.conftest import PROJECT_ROOT, lambda_client, start_emulator

REQUIRE = os.environ.get("REQUIRE_CGROUPS") == "1"
FUNCTIONS = PROJECT_ROOT / "bench" / "hardening" / "faultfunctions"
MS, S = 1_000_000, 1_000_000_000
ROOT = "lambda-emulator"  # the emulator's own root (handler.local.resources.ROOT_NAME)


# -- pure rules -----------------------------------------------------------------------------------
def test_emulator_line_formats_parses_and_becomes_headers():
    from handler.local.invocation import Outcome, emulator_headers

    cold = EmulatorLine("r1", 0.41, 0.0724, "boost", init_cpu_ms=812.3, contended=(("init", 2.4),))
    text = cold.format()
    assert text == (
        "EMULATOR RequestId: r1\tInit CPU: 812.30 ms\tDuration CPU: 0.41 ms\tCPU share: 0.072 vCPU\t"
        "Init CPU policy: boost\tContended: init 2.40x"
    )
    assert EmulatorLine.parse(f"REPORT RequestId: r1\tDuration: 1.00 ms\n{text}\n") == EmulatorLine(
        "r1", 0.41, 0.072, "boost", 812.3, (("init", 2.4),)
    )
    host = EmulatorLine("r2", None, None, "memory", contended=None)
    assert host.format().endswith(
        "Duration CPU: n/a\tCPU share: unlimited\tInit CPU policy: memory\tContended: unknown"
    )
    assert EmulatorLine.parse(host.format()) == host
    assert EmulatorLine.parse("REPORT RequestId: x\tDuration: 1 ms") is None
    headers = emulator_headers(Outcome("r1", b"", None, True, emulator=cold))
    assert headers == {
        "X-Emulator-Duration-Cpu-Us": "410",
        "X-Emulator-Init-Cpu-Us": "812300",
        "X-Emulator-Contended": "init 2.4",
    }
    calm = EmulatorLine("r3", 1.0, 1.0, "boost", contended=())
    assert "Contended: no" in calm.format() and "X-Emulator-Contended" not in emulator_headers(
        Outcome("r3", b"", None, False, emulator=calm)
    )


def test_contention_needs_a_slow_phase_and_a_saturated_host():
    # 0.5 ms of CPU at 0.072 vCPU needs 6.94 ms: 10 ms of wall is a factor of 1.44 (not over 1.5)
    assert Phase("invoke", 10 * MS, MS // 2, 0.072, 9_000).contended(1.5) is False
    slow = Phase("invoke", 20 * MS, MS // 2, 0.072, 12_000)  # factor 2.88, host 60 % saturated
    assert round(slow.factor(), 2) == 2.88 and slow.contended(1.5) is True
    assert Phase("invoke", 20 * MS, MS // 2, 0.072, 5_000).contended(1.5) is False  # host 25 %
    assert Phase("invoke", 20 * MS, MS // 2, 0.072, None).contended(1.5) is None  # no PSI: unknown
    # a share over 1 vCPU is judged as 1: one thread of 10 ms CPU in 10 ms of wall is not slowed
    assert Phase("init", 10 * MS, 10 * MS, 2.0, 10_000).factor() == 1.0
    init = Phase("init", 100 * MS, 40 * MS, 2.0, 80_000)  # factor 2.5, saturated
    assert contention([init, slow], 1.5) == (("init", 2.5), ("invoke", 2.88))
    assert contention([Phase("invoke", 20 * MS, MS // 2, 0.072, None)], 1.5) is None
    died = Phase("invoke", 20 * MS, None, 0.072, 20_000)  # its process is gone: not judged
    assert contention([died], 1.5) == ()
    # where the group says how long its own quota held it back, that wait is needed, not contention:
    # 0.3 ms of CPU that waited 18.5 ms for the next CFS period is not slowed by the host ...
    assert Phase("invoke", 19 * MS, 3 * MS // 10, 0.072, 15_000, 18_500_000).contended(1.5) is False
    # ... and 0.3 ms of CPU that took 1 ms, never throttled, on a saturated host, is (3.33x)
    late = Phase("invoke", MS, 3 * MS // 10, 0.072, 800, 0)
    assert late.contended(1.5) is True and round(late.factor(), 2) == 3.33


def test_init_timeout_rule_blames_the_host_only_when_it_was_saturated():
    limit, cap = 10 * S, INIT_CAP * 10 * S

    def allowance(elapsed_s, cpu_s, share, pressure_s):
        cpu = None if cpu_s is None else round(cpu_s * S)
        pressure = None if pressure_s is None else round(pressure_s * S)
        return init_allowance_ns(round(elapsed_s * S), cpu, share, pressure, limit, cap) / S

    # boost (2 vCPUs, judged as 1): 3 s of CPU in 10 s while the host was 80 % saturated: the
    # init's own need is max(3 s of CPU, 10 - 8 = 2 s of wall) = 3 s; 7 s of the limit remain
    assert allowance(10, 3, 2.0, 8) == pytest.approx(7)
    assert allowance(10, 3, 2.0, 2) == 0  # host 20 % saturated: the function used its time
    assert allowance(10, 11, 2.0, 9) == 0  # its CPU alone needs more than the limit
    assert allowance(10, 0.05, 2.0, 0.3) == 0  # it slept on a quiet host
    assert allowance(10, 0.05, 2.0, 6) == pytest.approx(6)  # ... on a busy one, pressure alone: excused
    # ... but not when its own run-queue wait is known: it waited 0.1 s for a CPU and slept the
    # rest, so it is excused those 0.1 s only, not the host's 6 s
    sleeper = init_allowance_ns(10 * S, S // 20, 2.0, 6 * S, limit, cap, waited_ns=S // 10)
    assert sleeper == pytest.approx(S // 10)
    assert init_allowance_ns(10 * S, S // 20, 2.0, 6 * S, limit, cap, waited_ns=0) == 0
    # an init that really waited for the CPU (8 s runnable) is still excused by what it waited
    assert init_allowance_ns(10 * S, 3 * S, 2.0, 9 * S, limit, cap, waited_ns=8 * S) == 7 * S
    # the memory policy at 128 MB: 0.5 s of CPU needs 6.94 s at 0.072 vCPU
    assert allowance(12, 0.5, 0.072, 8) == pytest.approx(10 - 0.5 / 0.072)
    assert allowance(58, 1, 2.0, 50) == pytest.approx(2)  # never past the cap (60 s)
    assert allowance(60, 1, 2.0, 59) == 0
    assert allowance(10, None, 2.0, 9) == 0 and allowance(10, 3, 2.0, None) == 0  # no figures
    assert allowance(10, 9.995, 2.0, 9) == 0  # 5 ms left: not worth a timer

    class Clock:
        now = 0

        def __call__(self):
            return self.now

    clock = Clock()
    lifecycle = Lifecycle(Timeouts(limit, 3 * S, 600 * S), clock)
    lifecycle.spawning()
    clock.now = 10 * S
    assert lifecycle.extend_init(7 * S) == 17 * S and lifecycle.init_deadline_ns == 17 * S
    assert lifecycle.extend_init(100 * S) == cap  # capped


def test_tmp_goes_over_slash_tmp_unless_that_would_hide_the_environments_files(tmp_path, monkeypatch):
    # As if this Python lived outside /tmp (a CI clone with its venv under /tmp would make every
    # environment's /tmp go to its private TMPDIR instead, by the rule under test).
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    monkeypatch.setattr(sys, "prefix", "/usr")
    monkeypatch.setattr(sys, "path", ["/usr/lib/python3"])
    root = TmpRoot(disk=True, base=tmp_path / "lambda-emulator")
    own = root.for_environment("a", 512, ["/var/task"])  # Lambda's task root: not under /tmp
    hidden = root.for_environment("b", 512, ["/var/task", "/tmp/pytest-models/logit.pkl"])
    assert own.mount_at == b"/tmp" and own.variables() == {}  # Lambda sets no TMPDIR
    assert hidden.mount_at == os.fsencode(hidden.directory)
    assert hidden.variables() == {"TMPDIR": str(hidden.directory)}
    plain = TmpRoot(disk=False, base=tmp_path / "lambda-emulator").for_environment("c", 512, [])
    assert plain.mount_at is None and plain.variables() == {"TMPDIR": str(plain.directory)}


def test_the_host_model_says_the_cpu_ticker_is_off_and_why():
    model = ResourceModel.host("unit test")
    try:
        described = model.describe([])
    finally:
        model.close()
    assert described["cpu_tick_us"] == 0 and "host model" in described["cpu_tick_reason"]


@pytest.mark.parametrize(
    ("pidfd", "spawn"), [(True, "off the event loop"), (False, "on the event loop (no pidfd)")]
)
def test_the_resource_model_says_where_environments_are_spawned(monkeypatch, pidfd, spawn):
    """Part of what produced the figures (handler.local.spawner): recorded in every results file."""
    monkeypatch.setattr(spawner, "usable", lambda: pidfd)
    model = ResourceModel.host("unit test")
    try:
        assert model.describe([])["spawn"] == spawn
    finally:
        model.close()


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)


def test_the_supervisor_kills_a_pid_only_if_it_still_names_the_process_it_was_told_of(tmp_path):
    """``+ PID START``: a PID whose process started at another time (reused) is left alone."""
    reused, ours, reaped = _sleeper(), _sleeper(), _sleeper()
    try:
        started = {child.pid: supervisor.start_time(child.pid) for child in (reused, ours, reaped)}
        assert all(started.values())
        spec = {"emulator_pid": 1, "tmp_directory": str(tmp_path / "lambda-emulator" / "1")}
        lines = (
            f"+ {reused.pid} {started[reused.pid] + 1}\n"  # as if the PID went to another process
            f"+ {ours.pid} {started[ours.pid]}\n+ {reaped.pid} {started[reaped.pid]}\n- {reaped.pid}\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "handler.local.supervisor", json.dumps(spec)],
            input=lines.encode(),
            cwd=PROJECT_ROOT,
            capture_output=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert ours.wait(10) == -signal.SIGKILL
        assert reused.poll() is None and reaped.poll() is None
    finally:
        for child in (reused, ours, reaped):
            child.kill()
            child.wait()


@pytest.mark.slow
def test_a_supervisor_that_cannot_start_leaves_no_group_ticker_or_tmp_behind(monkeypatch):
    need_cgroups()
    backends: list[cgroups.ResourceBackend] = []
    detect = cgroups.detect
    monkeypatch.setattr(cgroups, "detect", lambda *args: backends.append(detect(*args)) or backends[-1])

    def refuse(*_args: object) -> None:
        raise OSError("no supervisor")

    monkeypatch.setattr(resources.Supervisor, "start", refuse)
    with pytest.raises(OSError, match="no supervisor"):
        ResourceModel.detect(EmulatorConfig())
    (backend,) = backends
    assert isinstance(backend, cgroups.CgroupBackend) and backend._tick is None
    assert not [parent for parent in backend._parents if parent.exists()]
    assert not (Path(tempfile.gettempdir()) / ROOT / str(os.getpid())).exists()


# -- real emulators ---------------------------------------------------------------------------------
@functools.cache
def cgroups_missing() -> str | None:
    backend = cgroups.detect("lambda-emulator-test", "auto")
    try:
        return None if backend.enforced else backend.reason
    finally:
        backend.close()


def need_cgroups() -> None:
    reason = cgroups_missing()
    if reason is None:
        return
    if REQUIRE:
        pytest.fail(f"REQUIRE_CGROUPS=1 but no cgroup version works: {reason}")
    pytest.skip(f"cgroups unavailable: {reason}")


def function(name: str, memory_mb: int, **extra) -> str:
    lines = [f'name = "{name}"', 'handler = "resourceful.handler"', f'code_dir = "{FUNCTIONS}"']
    lines += [f"memory_mb = {memory_mb}", *(f"{key} = {json.dumps(value)}" for key, value in extra.items())]
    return "[[functions]]\n" + "\n".join(lines) + "\n"


FUNCTIONS_TOML = "".join(
    [
        function("hog", 128, timeout_s=10),
        function("spin-128", 128, timeout_s=30),
        function("spin-1769", 1769, timeout_s=30),
        function("counter", 512),
        function("tmp", 1024, timeout_s=10, ephemeral_storage_mb=512),
    ]
)


def our_groups(pid: int) -> list[Path]:
    """Every directory of emulator ``pid`` under ``lambda-emulator/`` in any cgroup hierarchy."""
    with open("/proc/self/mounts") as table:
        mounts = {Path(row[1]) for row in map(str.split, table) if row[2] in ("cgroup", "cgroup2")}
    return [path for mount in mounts if (path := mount / ROOT / str(pid)).exists()]


@contextlib.contextmanager
def emulator_with(tmp_path: Path, name: str, text: str, *args: str):
    config = tmp_path / f"{name}.toml"
    config.write_text(f'stage = "staging"\nport = 0\n{text}')
    running = start_emulator(*args, config=config, log_file=tmp_path / f"{name}.log")
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert leftovers == [], f"processes outlived the emulator: {leftovers}"
        assert our_groups(running.process.pid) == []


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """One emulator with the resource model on (cgroups, freeze) and the test functions."""
    need_cgroups()
    text = "freeze = true\n" + FUNCTIONS_TOML  # the default, stated: this test is about it
    with emulator_with(tmp_path_factory.mktemp("resources"), "limited", text) as running:
        yield running


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def invoke(emulator, name: str, **event) -> tuple[dict, dict, str]:
    """Invoke API with LogType=Tail: (response, payload, log tail)."""
    client = lambda_client(emulator.base_url, read_timeout_s=60)
    response = client.invoke(FunctionName=name, Payload=json.dumps(event), LogType="Tail")
    payload = json.loads(response["Payload"].read())
    return response, payload, base64.b64decode(response["LogResult"]).decode()


def body(payload: dict) -> dict:
    return json.loads(payload["body"])


@pytest.mark.slow
def test_over_its_memory_an_invocation_fails_as_on_aws_and_the_next_gets_a_new_environment(limited):
    _, before, _ = invoke(limited, "hog", action="pid")
    response, payload, log = invoke(limited, "hog", action="allocate", mb=200)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    report = parse_report(log)
    assert (report.status, report.error_type) == ("error", "Runtime.OutOfMemory")
    assert report.max_memory_used_mb == report.memory_size_mb == 128
    assert "\tStatus: error\tError Type: Runtime.OutOfMemory" in log
    assert EmulatorLine.parse(log).request_id == report.request_id
    status, _, answer = get(limited.url("hog", "action=allocate&mb=200"))
    assert (status, json.loads(answer)) == (502, {"message": "Internal server error"})
    status, headers, answer = get(limited.url("hog", "action=pid"))
    assert status == 200 and json.loads(answer)["pid"] != body(before)["pid"]
    assert "X-Emulator-Init-Duration-Ms" in headers  # a new environment: a cold start
    lines = [line for line in limited.log_file.read_text().splitlines() if report.request_id in line]
    assert [line.split("] ")[1].split(" ")[0] for line in lines[-2:]] == ["REPORT", "EMULATOR"]


@pytest.mark.slow
def test_cpu_share_follows_memory_and_the_cpu_time_is_reported_beside_it(limited):
    figures = {}
    for name in ("spin-128", "spin-1769"):
        invoke(limited, name, action="pid")  # cold start out of the way
        _, payload, log = invoke(limited, name, action="spin", loops=1_500_000)
        figures[name] = (parse_report(log), EmulatorLine.parse(log), body(payload)["cpu_ms"])
    (small, small_cpu, small_work), (large, large_cpu, _) = figures.values()
    assert small.duration_ms >= 5 * large.duration_ms, (small, large)  # 13.8x in theory
    assert (small_cpu.cpu_share_vcpus, large_cpu.cpu_share_vcpus) == (0.072, 1.0)
    assert small_cpu.init_cpu_policy == "boost"
    # the same work, the same CPU time: the wall time is what the share stretched
    assert 0.5 < small_cpu.duration_cpu_ms / large_cpu.duration_cpu_ms < 2
    assert small_cpu.duration_cpu_ms >= small_work > 0
    status, headers, _ = get(limited.url("spin-128", "action=spin&loops=1000"))
    assert status == 200 and int(headers["X-Emulator-Duration-Cpu-Us"]) > 0


def counter_advance(emulator) -> int:
    """How far a background thread's counter (+1 per ms) moves between two invocations 0.5 s apart."""
    first = body(invoke(emulator, "counter", action="counter")[1])
    time.sleep(0.5)
    second = body(invoke(emulator, "counter", action="counter")[1])
    assert first["pid"] == second["pid"]
    return second["count"] - first["count"]


@pytest.mark.slow
def test_frozen_between_invocations_a_background_thread_stands_still(limited, tmp_path):
    assert counter_advance(limited) < 50  # it runs only while an invocation does (a few ms)
    with emulator_with(tmp_path, "unfrozen", function("counter", 512), "--no-freeze") as unfrozen:
        assert counter_advance(unfrozen) > 200


@pytest.mark.slow
def test_tmp_is_private_to_each_environment_and_full_past_its_size(limited):
    model = json.loads(get(f"{limited.base_url}/_emulator/resource-model")[2])
    url = limited.url("tmp", "action=tmp&hold_s=0.5")
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = [json.loads(answer) for _, _, answer in pool.map(get, [url, url])]
    assert answers[0]["pid"] != answers[1]["pid"]  # two environments at once
    for answer in answers:
        assert [name for name in answer["files"] if name.startswith("marker-")] == [f"marker-{answer['pid']}"]
    if model["tmp"] != "disk":
        assert answers[0]["tmpdir"] != answers[1]["tmpdir"]
        return
    full = json.loads(get(limited.url("tmp", "action=tmp&mb=600"))[2])
    assert full["errno"] == 28 and 512 <= full["written_mb"] <= 520  # ENOSPC past 512 MiB


@pytest.mark.slow
def test_the_resource_model_is_printed_and_served(limited):
    startup = limited.child.text()
    assert "resources: cgroup-v" in startup and "init CPU: boost" in startup and "freeze: on" in startup
    model = json.loads(get(f"{limited.base_url}/_emulator/resource-model")[2])
    assert model["kind"] in ("cgroup-v1", "cgroup-v2") and model["enforced"] is True
    assert (model["init_cpu"], model["freeze"], model["contention_factor"]) == ("boost", True, 1.5)
    assert model["cpu_period_us"] == cgroups.PERIOD_US and model["host_pressure"] in (
        None,
        "/proc/pressure/cpu",
    )
    assert model["functions"]["spin-1769"]["cpu_share_vcpus"] == 1.0
    if model["cpu_tick_us"]:  # the regime the CPU quota was checked in, in the line and the model
        assert model["cpu_tick_reason"] is None
        assert f"CPU quota checked every {model['cpu_tick_us']} µs" in startup
    else:
        assert model["cpu_tick_reason"] and "CPU quota checked at the kernel's ticks" in startup
    assert model["functions"]["hog"]["memory_mb"] == 128


@pytest.mark.slow
def test_host_model_enforces_nothing_and_says_so(tmp_path):
    text = 'resource_model = "host"\n' + function("hog", 128, timeout_s=10)
    with emulator_with(tmp_path, "host", text) as running:
        startup = running.child.text()
        assert "resources: host model: limits are NOT enforced" in startup
        response, payload, log = invoke(running, "hog", action="allocate", mb=200)
        assert "FunctionError" not in response and body(payload)["allocated_mb"] == 200
        assert EmulatorLine.parse(log).cpu_share_vcpus is None  # "CPU share: unlimited"
        model = json.loads(get(f"{running.base_url}/_emulator/resource-model")[2])
        assert (model["kind"], model["enforced"], model["freeze"]) == ("host", False, False)


@pytest.mark.slow
def test_sigterm_removes_every_group(tmp_path):
    need_cgroups()
    with emulator_with(tmp_path, "sigterm", "freeze = true\n" + function("counter", 512)) as running:
        invoke(running, "counter", action="counter")  # an environment, frozen now
        assert our_groups(running.process.pid)
        os.kill(running.process.pid, signal.SIGTERM)
        assert running.process.wait(30) == 0
        assert our_groups(running.process.pid) == []


@pytest.mark.slow
def test_after_sigkill_the_next_emulator_removes_what_was_left(tmp_path):
    """The second line of defence: the supervisor (handler.local.supervisor) killed first."""
    need_cgroups()
    text = "freeze = true\n" + function("counter", 512)
    with emulator_with(tmp_path, "killed", text) as killed:
        invoke(killed, "counter", action="counter")
        environments = killed.children()
        helpers = [child for child in killed.child.descendants() if child not in environments]
        (supervisor,) = [child for child in helpers if "handler.local.supervisor" in child.cmdline()]
        supervisor.kill()
        deadline = time.monotonic() + 10
        while supervisor.is_running() and supervisor.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the supervisor outlived SIGKILL"
            time.sleep(0.01)
        killed.process.kill()  # SIGKILL: no clean-up; its frozen environment cannot even die
        killed.process.wait(10)
        assert our_groups(killed.process.pid) and environments
        with emulator_with(tmp_path, "next", text) as following:
            assert "resources: removed" in following.child.text()
            assert our_groups(killed.process.pid) == []
            psutil.wait_procs(environments, timeout=5)
            assert not [process for process in environments if process.is_running()]
            assert not (Path("/tmp") / "lambda-emulator" / str(killed.process.pid)).exists()
