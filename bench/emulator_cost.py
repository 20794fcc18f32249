"""``python -m bench.emulator_cost``: what the local emulator itself costs per request, in CPU and wall time.

Starts its own emulator (``python -m handler.serve``, one function, by default ``logit-lean`` at
1,769 MB so that the CPU quota, one whole vCPU, is not in the way), the floor proxy
(``python -m bench.truth.proxy``) and a bare aiohttp server (``python -m bench.truth.server``,
``/truth/0``), then runs ``--rounds`` rounds against each, interleaved (emulator, floor, bare,
emulator, …) so that all three see the same machine. A round is a new keep-alive connection
(http.client, this process, closed loop), ``--warmup`` untimed requests, then ``--requests``
timed ones. Per round:

- **server CPU**: the server process's CPU time (the emulator: its gateway and Runtime API
  together, every thread), the delta of ``/proc/<pid>/task/*/schedstat`` (ns, the scheduler's
  own accounting; ``utime + stime`` from ``/proc/<pid>/stat`` in clock ticks where it is absent);
- **environment CPU**: the same for the function's environment processes (awslambdaric and
  the handler; the emulator's or the floor proxy's descendants), reported apart;
- **client CPU**: this process's ``time.process_time_ns()`` over the timed loop (http.client
  plus the timing and the histogram record);
- **wall**: per request, just before the request is written to just after the body is read
  (``perf_counter_ns``), into an HdrHistogram (``bench.latency``).

Not measured: kernel work that is accounted to no process (softirq time on an idle CPU),
the cost of a cold start (the warm-up absorbs it), and concurrency (one client). The ratios
are the goals set for it: gateway CPU per request ÷ bare server CPU per request, and the
emulator's e2e p50 ÷ the bare server's p50, from the merged histograms. A proxied request is
three HTTP exchanges (the client's, the runtime's ``/next`` reply, its ``POST …/response``).

The **floor** target is ``bench.truth.proxy``: those three exchanges and nothing else, on two
aiohttp low-level servers in front of one ``awslambdaric`` environment running the same
function (no event fidelity, no resource model, no logs). Its ratios to the bare server (floor
CPU ÷ bare CPU, floor p50 ÷ bare p50) are the least this architecture costs on this machine:
what the emulator spends above them is its own work, what is below them is not its to save.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import psutil

from bench.cli import positive_int
from bench.latency import LatencyRecorder
from bench.machine import collect_metadata
from bench.process import line_with, running_emulator, start
from bench.results import cpu_idle_phrase, utc_stamp, write_json_atomic
from bench.results.emulatorcost import CostRound, EmulatorCostRun, TargetCost
from bench.stats import summarize
from bench.target import resource_model
from handler.tutorial import TUTORIAL_QUERY
from handler.variants import VARIANTS

QUERY = urllib.parse.urlencode(TUTORIAL_QUERY)
GATEWAY_CPU_RATIO_GOAL = 3.0
E2E_P50_RATIO_GOAL = 2.5
CPU_SOURCE = "/proc/<pid>/task/*/schedstat"
LEAN = VARIANTS["lean"]
LEAN_ENV = dict(
    MODEL_URI=f"models/{LEAN.artifact}", MODEL_FORMAT=LEAN.model_format, INPUT_PATH=LEAN.input_path
)


@dataclass(frozen=True)
class CostConfig:
    requests: int
    warmup: int
    rounds: int
    memory_mb: int
    results: str | None
    low_latency: bool = False
    models: Path | None = None  # --models for the emulator; None: the project's models/
    freeze: bool = True  # False: the emulator's --no-freeze (environments run on between invocations)
    resource_model: str = "auto"  # the emulator's --resource-model ("host": nothing enforced)
    function: str = LEAN.function_name


def process_cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, ns: schedstat where the kernel has it, else
    ``utime + stime`` in clock ticks (psutil)."""
    total, found = 0, False
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with (
                contextlib.suppress(FileNotFoundError, ProcessLookupError),
                open(f"/proc/{pid}/task/{task}/schedstat", "rb") as file,
            ):
                total += int(file.read().split()[0])
                found = True
    if found:
        return total
    times = psutil.Process(pid).cpu_times()
    return round((times.user + times.system) * 1e9)


def config_toml(config: CostConfig, code_dir: Path) -> str:
    """The emulator's configuration: the one function, at ``memory_mb``."""
    env = "".join(f'{key} = "{value}"\n' for key, value in LEAN_ENV.items())
    return (
        'stage = "staging"\nport = 0\nidle_timeout_s = 600\n\n'
        f'[[functions]]\nname = "{config.function}"\nhandler = "handler.app.lambda_handler"\n'
        f'code_dir = "{code_dir}"\nmemory_mb = {config.memory_mb}\n[functions.env]\n{env}'
    )


@dataclass
class Target:
    """One server under test: its URL, the process that serves and what runs below it."""

    name: str
    url: str
    server_pid: int
    environments: Callable[[], list[int]]  # PIDs whose CPU counts as the environment's
    statuses: dict[str, int]
    e2e: LatencyRecorder


def _connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30), path


def run_round(
    target: Target,
    number: int,
    requests: int,
    warmup: int,
    clock: Callable[[], int] = time.perf_counter_ns,
    client_cpu: Callable[[], int] = time.process_time_ns,
    cpu_of: Callable[[int], int] = process_cpu_ns,
) -> CostRound:
    """One round: a new connection, ``warmup`` untimed requests, ``requests`` timed ones."""
    connection, path = _connection(target.url)
    try:
        for _ in range(warmup):
            connection.request("GET", path)
            connection.getresponse().read()
        environments = target.environments()
        recorder = LatencyRecorder()
        statuses: dict[str, int] = {}
        server_before = cpu_of(target.server_pid)
        environment_before = [cpu_of(pid) for pid in environments]
        client_before, wall_before = client_cpu(), clock()
        for _ in range(requests):
            started = clock()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            recorder.record_ns(clock() - started)
            statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
        wall_ns, client_ns = clock() - wall_before, client_cpu() - client_before
        server_ns = cpu_of(target.server_pid) - server_before
        environment_ns = sum(cpu_of(pid) for pid in environments) - sum(environment_before)
    finally:
        connection.close()
    if environments != target.environments():
        raise RuntimeError(f"{target.name}: its environment processes changed during round {number}")
    for status, count in statuses.items():
        target.statuses[status] = target.statuses.get(status, 0) + count
    target.e2e.merge(recorder)
    summary = recorder.summary()
    return CostRound(
        target=target.name,
        number=number,
        requests=requests,
        server_cpu_ns=server_ns,
        environment_cpu_ns=environment_ns if environments else None,
        client_cpu_ns=client_ns,
        wall_ns=wall_ns,
        e2e_p50_us=summary.p50,
        e2e_p99_us=summary.p99,
    )


def summarize_target(target: Target, rounds: list[CostRound]) -> TargetCost:
    """One target's figures over its rounds (``rounds`` holds only this target's)."""
    requests = sum(r.requests for r in rounds)
    environment = [r.environment_cpu_ns for r in rounds if r.environment_cpu_ns is not None]
    return TargetCost(
        target=target.name,
        url=target.url,
        requests=requests,
        statuses=dict(target.statuses),
        server_cpu_us_per_request=round(sum(r.server_cpu_ns for r in rounds) / requests / 1_000, 3),
        environment_cpu_us_per_request=round(sum(environment) / requests / 1_000, 3) if environment else None,
        client_cpu_us_per_request=round(sum(r.client_cpu_ns for r in rounds) / requests / 1_000, 3),
        e2e_us=target.e2e.series(),
        server_cpu_rounds=summarize(
            [r.server_cpu_ns / r.requests / 1_000 for r in rounds], f"{target.name} server CPU", "--rounds"
        ),
        e2e_p50_rounds=summarize([r.e2e_p50_us for r in rounds], f"{target.name} e2e p50", "--rounds"),
    )


@contextlib.contextmanager
def running_targets(config: CostConfig, work_dir: Path) -> Iterator[tuple[Target, Target, Target, str]]:
    """The emulator, the floor proxy and the bare server for the ``with`` block, stopped by PID
    on leaving it."""
    config_path = work_dir / "emulator.toml"
    config_path.write_text(config_toml(config, Path.cwd().resolve()), encoding="utf-8")
    extra = ["--config", str(config_path), *(["--low-latency"] if config.low_latency else [])]
    extra += [] if config.freeze else ["--no-freeze"]
    extra += ["--resource-model", config.resource_model]
    floor_env = LEAN_ENV | (
        {"MODEL_URI": str(config.models.resolve() / LEAN.artifact)} if config.models else {}
    )
    floor_command = [sys.executable, "-m", "bench.truth.proxy", "--port", "0", "--code-dir"]
    floor_command += [str(Path.cwd().resolve()), *(f"--env={k}={v}" for k, v in floor_env.items())]
    bare_command = [sys.executable, "-m", "bench.truth.server", "--port", "0"]
    with (
        running_emulator(config.models, work_dir, *extra) as emulator,
        start(floor_command, work_dir / "proxy.out", ready=line_with("proxy: ")) as floor_child,
        start(bare_command, work_dir / "truth.out", ready=line_with("truth: ")) as bare_child,
    ):
        emulator_url = emulator.url(config.function, QUERY)
        floor_url = (
            str(floor_child.ready).split("proxy: ", 1)[1].strip() + f"/staging/{config.function}?{QUERY}"
        )
        bare_url = str(bare_child.ready).split("truth: ", 1)[1].strip() + "/truth/0"

        def environment_pids() -> list[int]:
            return sorted(p.pid for p in emulator.children())

        def floor_pids() -> list[int]:
            return sorted(p.pid for p in floor_child.descendants())

        yield (
            Target("emulator", emulator_url, emulator.child.pid, environment_pids, {}, LatencyRecorder()),
            Target("floor", floor_url, floor_child.pid, floor_pids, {}, LatencyRecorder()),
            Target("bare", bare_url, bare_child.pid, list, {}, LatencyRecorder()),
            emulator.base_url,
        )


def measure(config: CostConfig, work_dir: Path) -> EmulatorCostRun:
    with running_targets(config, work_dir) as (emulator, floor, bare, base_url):
        model = resource_model(base_url)
        results: list[CostRound] = []
        for number in range(1, config.rounds + 1):
            for target in (emulator, floor, bare):
                results.append(run_round(target, number, config.requests, config.warmup))
        for target in (emulator, floor):
            if not target.environments():
                raise RuntimeError(f"the {target.name} has no environment process after the rounds")
    emulator_cost = summarize_target(emulator, [r for r in results if r.target == "emulator"])
    floor_cost = summarize_target(floor, [r for r in results if r.target == "floor"])
    bare_cost = summarize_target(bare, [r for r in results if r.target == "bare"])
    options = {
        "requests": config.requests,
        "warmup": config.warmup,
        "rounds": config.rounds,
        "memory_mb": config.memory_mb,
        "low_latency": config.low_latency,
        "freeze": config.freeze,
        "resource_model": config.resource_model,
    }
    return EmulatorCostRun(
        metadata=collect_metadata(options, resource_model=model),
        function=config.function,
        memory_mb=config.memory_mb,
        rounds=config.rounds,
        requests_per_round=config.requests,
        warmup_per_round=config.warmup,
        cpu_source=CPU_SOURCE,
        emulator=emulator_cost,
        floor=floor_cost,
        bare=bare_cost,
        round_results=results,
        gateway_cpu_ratio=round(
            emulator_cost.server_cpu_us_per_request / bare_cost.server_cpu_us_per_request, 3
        ),
        e2e_p50_ratio=round(emulator_cost.e2e_us.p50 / bare_cost.e2e_us.p50, 3),
        floor_cpu_ratio=round(floor_cost.server_cpu_us_per_request / bare_cost.server_cpu_us_per_request, 3),
        floor_e2e_p50_ratio=round(floor_cost.e2e_us.p50 / bare_cost.e2e_us.p50, 3),
        gateway_cpu_ratio_goal=GATEWAY_CPU_RATIO_GOAL,
        e2e_p50_ratio_goal=E2E_P50_RATIO_GOAL,
    )


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def table(run: EmulatorCostRun) -> str:
    """The console table: per request, CPU µs of each process and wall µs."""
    lines = [
        "| per request | CPU µs (rounds' min–max) | wall p50 µs | wall p99 µs |",
        "|---|---:|---:|---:|",
    ]
    for cost, label in (
        (run.emulator, f"emulator ({run.function}, {run.memory_mb} MB)"),
        (run.floor, "floor: three aiohttp exchanges (bench.truth.proxy)"),
        (run.bare, "bare aiohttp /truth/0"),
    ):
        spread = cost.server_cpu_rounds
        lines += [
            f"| {label}: server process | {_cell(cost.server_cpu_us_per_request)} "
            f"({_cell(spread.min)}–{_cell(spread.max)}) "
            f"| {_cell(cost.e2e_us.p50)} | {_cell(cost.e2e_us.p99)} |",
        ]
        if cost.environment_cpu_us_per_request is not None:
            lines.append(f"| {label}: environment | {_cell(cost.environment_cpu_us_per_request)} | | |")
        lines.append(f"| {label}: client | {_cell(cost.client_cpu_us_per_request)} | | |")
    return "\n".join(lines)


def verdict_lines(run: EmulatorCostRun) -> list[str]:
    def met(value: float, goal: float) -> str:
        return f"goal <= {goal:g}x: " + ("met" if value <= goal else "not met")

    return [
        f"gateway CPU / bare server CPU: {run.gateway_cpu_ratio:.2f}x "
        f"({met(run.gateway_cpu_ratio, run.gateway_cpu_ratio_goal)})",
        f"e2e p50 / bare round trip p50: {run.e2e_p50_ratio:.2f}x "
        f"({met(run.e2e_p50_ratio, run.e2e_p50_ratio_goal)})",
        f"floor CPU / bare server CPU: {run.floor_cpu_ratio:.2f}x "
        "(the least three aiohttp exchanges cost here)",
        f"floor e2e p50 / bare p50: {run.floor_e2e_p50_ratio:.2f}x",
        f"emulator / floor: CPU {run.over_floor_cpu:.2f}x, e2e p50 {run.over_floor_e2e_p50:.2f}x "
        "(the emulator's own work above the three exchanges)",
    ]


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr (the program, the bad value), exit 2; no usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bench.emulator_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--requests", type=positive_int, default=5_000, help="timed requests per round (5000)"
    )
    parser.add_argument("--warmup", type=positive_int, default=500, help="untimed requests per round (500)")
    parser.add_argument("--rounds", type=positive_int, default=5, help="rounds per target, interleaved (5)")
    parser.add_argument("--memory-mb", type=positive_int, default=1769, help="the function's memory (1769)")
    parser.add_argument(
        "--low-latency", action="store_true", help="the emulator holds a 0 µs CPU latency limit"
    )
    parser.add_argument(
        "--no-freeze",
        dest="freeze",
        action="store_false",
        help="the emulator's --no-freeze (what the freeze costs)",
    )
    parser.add_argument(
        "--resource-model",
        choices=("auto", "cgroup-v1", "cgroup-v2", "host"),
        default="auto",
        help="the emulator's (default auto; host: nothing enforced, what the model costs)",
    )
    parser.add_argument("--models", type=Path, help="directory of trained models (default: models/)")
    parser.add_argument("--results", help="results JSON path (default results/emulator-cost-<stamp>.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 128 <= args.memory_mb <= 10_240:
        parser.error(f"--memory-mb must be in [128, 10240], not {args.memory_mb}")
    if args.models is not None and not (args.models / "logit.json").is_file():
        parser.error(f"--models {str(args.models)!r} has no logit.json (python -m training --out DIR)")
    config = CostConfig(
        args.requests,
        args.warmup,
        args.rounds,
        args.memory_mb,
        args.results,
        args.low_latency,
        args.models,
        args.freeze,
        args.resource_model,
    )
    # SIGINT stops the run and its children (bench.process's policy), even as a shell's
    # background job, which starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with tempfile.TemporaryDirectory(prefix="emulator-cost-") as work:
            run = measure(config, Path(work))
    except (OSError, RuntimeError, http.client.HTTPException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted: the emulator, the floor proxy and the bare server are stopped; no results written",
            file=sys.stderr,
        )
        return 130
    path = write_json_atomic(Path(config.results or f"results/emulator-cost-{utc_stamp()}.json"), run)
    print(f"machine: {cpu_idle_phrase(run.metadata.cpu_idle)}")
    print(table(run))
    for line in verdict_lines(run):
        print(line)
    for cost in (run.emulator, run.floor, run.bare):
        for warning in cost.server_cpu_rounds.warnings:
            print(f"warning: {warning}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
