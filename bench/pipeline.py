"""The main job, stage by stage: train → emulator → cold-start profile → Locust → report.

Each stage is the project's own command line, run as a child process with its output in the
run's folder (``results/run-<UTC>/``): what the pipeline did can be re-run stage by stage
from the commands recorded in each results file. The emulator runs for the whole job; every
process started here is stopped in a ``finally``, also on Ctrl-C. The pipeline itself times
nothing; it reads back the results files to print a summary.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.functionrun import cold_start_lines, locust_options, profile_commands
from bench.functions import load as load_functions
from bench.load.command import LocustCommand
from bench.modelrun import prepare as prepare_model
from bench.powertune.sweep import verdict_line
from bench.process import ChildError, run_to_completion, running_emulator
from bench.requests import http_request, read_requests
from bench.results import ColdstartRun, Document, LocustRun, PowertuneRun, read_document, utc_stamp
from bench.results.kinds import LocustEndpoint
from handler.features import TUTORIAL_QUERY

TUTORIAL_FUNCTION = "logitModel"
LEAN_FUNCTION = "logit-lean"
STAGE = "staging"
VERDICT_OK = (0, 1, 3)  # PASS, FAIL, INVALID: the stage ran and wrote its results
LOCUST_OK = VERDICT_OK


@dataclass(frozen=True)
class Plan:
    """How much of everything: the defaults (<= 5 min on 2 cores) or ``--quick`` (<= 60 s)."""

    coldstart_variants: str
    coldstart_trials: int
    coldstart_warm: int
    endpoint_cold_trials: int
    steady_s: int
    steady_rate: float
    steady_users: int
    step_steps: int
    step_time_s: float
    target_ms: float
    powertune_memory: str  # "" skips the sweep
    powertune_cold_trials: int
    powertune_warm: int
    # Environments warmed before the load runs: enough for the steady rate's bursts at the
    # tutorial function's share (256 MB: 0.145 vCPU, a few ms a request), so that the steady
    # run measures warm environments, not a pile of cold starts sharing two cores.
    warm_environments: int = 4
    # The floor (a no-op) beside every size of the sweep: warm invocations per round, two rounds.
    powertune_floor_warm: int = 200

    @classmethod
    def default(cls, target_ms: float) -> Plan:
        # 700 warm invocations a size: a p99 claim at 99 % confidence needs 459 with none over
        # the target, 662 with one (bench.verdict), so a function clearly under it can PASS.
        # To pay for them within the 5 minutes: 2 forced cold starts a size, not 3 (the job's
        # cold-start stages measure cold starts; the sweep's price them), and the floor's rounds
        # of 200 (docs/benchmarks.md, "The floor beside every Duration").
        return cls("all", 5, 1000, 5, 20, 100.0, 2, 5, 6.0, target_ms, "256,1024,1769", 2, 700)

    @classmethod
    def quick(cls, target_ms: float) -> Plan:
        return cls("tutorial,numpy,lean", 2, 200, 0, 4, 50.0, 1, 3, 1.5, target_ms, "", 0, 0)

    def for_functions(self) -> Plan:
        """A ``--config`` run: cold starts through the emulator even with ``--quick`` (the
        process-mode profile of a handler is not the variants' comparison)."""
        return replace(self, endpoint_cold_trials=max(self.endpoint_cold_trials, 2))


@dataclass(frozen=True)
class PipelineConfig:
    models: Path
    data: str | None
    run_dir: Path
    plan: Plan
    functions: tuple[str, ...] = (TUTORIAL_FUNCTION, LEAN_FUNCTION)
    low_latency: bool = False  # the emulator holds a 0 µs CPU latency limit (handler.local.cpulatency)
    # --config FILE: the emulator's configuration whose functions are measured (nothing trained,
    # the file used as is); --requests FILE: what every stage sends them (bench.requests)
    emulator_config: Path | None = None
    requests: Path | None = None
    runs: int = 1  # the load runs repeated (--runs N), each kept, for python -m bench.compare
    # --model FILE --sample CSV [--label COL] [--code-dir DIR]: a user's model (bench.modelrun)
    model: Path | None = None
    sample: Path | None = None
    label: str | None = None
    code_dir: Path | None = None
    profile: Path | None = None  # the process-mode profile already run (bench.modelrun.prepare)
    # the cold-start profile's two variants the summary compares: the slow one / the fast one
    compared: tuple[str, ...] = ("tutorial", "lean")


class StageFailed(RuntimeError):
    """A stage exited with an unexpected code; the message names it and its log."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def default_run_dir() -> Path:
    return Path("results") / f"run-{utc_stamp()}"


def run_stage(
    name: str,
    command: list[str],
    log: Path,
    ok: tuple[int, ...] = (0,),
    timeout_s: float = 600,
    writes: Path | None = None,
) -> int:
    """Run one stage to completion; on any way out, make sure its process is gone. A stage
    that ``writes`` a results file has failed if the file is not there afterwards."""
    started = time.monotonic()
    print(f"  {name} …", end="", flush=True)
    if writes is not None:
        writes.unlink(missing_ok=True)  # a file left by an earlier run in this folder proves nothing
    try:
        stage = run_to_completion(command, log, timeout_s, name=name)
    except ChildError as exc:
        raise StageFailed(f"{name}: did not finish within {timeout_s:g} s (log: {log})") from exc
    code = stage.returncode
    print(f" {time.monotonic() - started:.1f} s")
    if code not in ok or (writes is not None and not writes.is_file()):
        raise StageFailed(f"{name}: exit code {code}: {stage.tail()} (log: {log})", code)
    return code


def warm_up(
    base_url: str,
    function: str,
    requests: int = 3,
    timeout_s: float = 60,
    concurrency: int = 1,
    requests_file: Path | None = None,
    stage: str = STAGE,
) -> None:
    """``concurrency`` environments warmed by ``requests`` rounds of that many parallel requests,
    so that the load runs start from warm environments (the cold starts have stages of their
    own). A cold function hit at full rate opens every environment its concurrency allows at
    once; on Lambda each of them initialises on its own CPU, here they share the host's, and the
    run would measure that pile-up (init timeouts, throttles) rather than the function."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    print(f"  warm-up {function} ({concurrency} environments) …", end="", flush=True)
    url = f"{base_url}/{stage}/{function}?{urllib.parse.urlencode(TUTORIAL_QUERY)}"
    request: urllib.request.Request | str = url
    if requests_file is not None:  # the file's first line
        line = http_request(read_requests(requests_file).lines[0], f"{stage}/{function}")
        url = f"{base_url}{line.path}"
        request = urllib.request.Request(url, line.body or None, dict(line.headers), method=line.method)

    def one(_: int) -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                response.read()
        except (OSError, urllib.error.HTTPError) as exc:
            raise StageFailed(f"warm-up {function}: {url}: {exc}") from exc

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(requests):
            list(pool.map(one, range(concurrency)))
    print(f" {time.monotonic() - started:.1f} s")


def stage_of(config: PipelineConfig) -> str:
    """The API's stage: ``--config``'s, else the default configuration's."""
    return load_functions(config.emulator_config).stage if config.emulator_config is not None else STAGE


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _locust(config: PipelineConfig, host: str, function: str, scenario: str, repeat: int = 1) -> Path:
    """One Locust run; with ``--runs N`` the repeats 2..N are ``locust-F-S-run<k>.json``."""
    plan = config.plan
    suffix = "" if repeat == 1 else f"-run{repeat}"
    results = config.run_dir / f"locust-{function}-{scenario}{suffix}.json"
    run = LocustCommand(
        host, (f"{stage_of(config)}/{function}",), results, target_ms=plan.target_ms, models=config.models
    )
    if scenario == "steady":
        run = replace(
            run, users=plan.steady_users, spawn_rate=plan.steady_users, run_time_s=plan.steady_s,
            arrival="open", rate=plan.steady_rate,
        )  # fmt: skip
    else:
        run = replace(
            run, users=1, spawn_rate=1, scenario="step", steps=plan.step_steps, step_time_s=plan.step_time_s
        )
    if config.requests is not None:
        run = replace(run, extra=(*run.extra, *locust_options(config, function)))
    log = results.with_suffix(".log")
    label = f"locust {scenario} {function}" + (f" (run {repeat}/{config.runs})" if config.runs > 1 else "")
    run_stage(label, run.argv(), log, LOCUST_OK, writes=results)
    return results


def _powertune(config: PipelineConfig, base_url: str) -> Path:
    """A short power-tuning sweep through the running emulator (which it restores after)."""
    plan = config.plan
    results = config.run_dir / "powertune.json"
    command = _python("-m", "bench.powertune", "--lambda-endpoint", base_url)
    command += ["--functions", ",".join(config.functions), "--memory", plan.powertune_memory]
    command += ["--cold-trials", str(plan.powertune_cold_trials), "--warm", str(plan.powertune_warm)]
    command += ["--floor-warm", str(plan.powertune_floor_warm)]
    command += ["--target-ms", f"{plan.target_ms:g}", "--results", str(results)]
    command += _with_files(config)
    run_stage("power tuning", command, results.with_suffix(".log"), VERDICT_OK, writes=results)
    return results


def _with_files(config: PipelineConfig) -> list[str]:
    """``--config``/``--requests`` for a stage that takes both."""
    files = ["--config", str(config.emulator_config)] if config.emulator_config is not None else []
    return files + (["--requests", str(config.requests)] if config.requests is not None else [])


def _coldstart_functions(config: PipelineConfig) -> list[Path]:
    """``--config``: each function's handler profiled in fresh processes."""
    produced = []
    for stage, command, results in profile_commands(config):
        run_stage(stage, command, results.with_suffix(".log"), VERDICT_OK, writes=results)
        produced.append(results)
    return produced


def _fidelity(config: PipelineConfig) -> Path | None:
    """``python -m bench.fidelity --quick`` (about 25 s, emulators of its own); prints its one line
    (``fidelity: N/M within tolerance; ...``). None when it could not run (no CPU share here)."""
    results = config.run_dir / "fidelity.json"
    log = results.with_suffix(".log")
    command = _python("-m", "bench.fidelity", "--quick", "--results", str(results))
    code = run_stage("fidelity (--quick)", command, log, (0, 1, 2), timeout_s=120)
    document = _load(results) if code != 2 else None
    print(f"  {document.summary}" if document is not None else f"  fidelity: not run (log: {log})")
    return results if document is not None else None


def execute(config: PipelineConfig) -> list[Path]:
    """Every stage in order; returns the results files the report is built from."""
    plan, run_dir = config.plan, config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.profile is not None:  # --model: profiled by bench.modelrun.prepare
        return _execute_stages(config, [config.profile])
    if config.emulator_config is not None:
        return _execute_stages(config, _coldstart_functions(config))
    train = _python("-m", "training", "--out", str(config.models)) + (
        ["--data", config.data] if config.data else []
    )
    run_stage("train", train, run_dir / "train.log")
    coldstart = run_dir / "coldstart.json"
    command = _python("-m", "bench.coldstart", "--variants", plan.coldstart_variants, "--no-progress")
    command += ["--trials", str(plan.coldstart_trials), "--warm", str(plan.coldstart_warm)]
    command += [
        "--models",
        str(config.models),
        "--results",
        str(coldstart),
        "--target-ms",
        f"{plan.target_ms:g}",
    ]
    run_stage(
        "cold-start profile (process mode)", command, run_dir / "coldstart.log", VERDICT_OK, writes=coldstart
    )
    return _execute_stages(config, [coldstart])


def _execute_stages(config: PipelineConfig, produced: list[Path]) -> list[Path]:
    """The emulator's stages (cold starts through it, Locust, power tuning), then the report."""
    plan, run_dir = config.plan, config.run_dir
    extra: tuple[str, ...] = ("--low-latency",) if config.low_latency else ()
    models: Path | None = config.models
    if config.emulator_config is not None:  # the file as is: its own MODEL_URIs, only these functions
        extra += ("--config", str(config.emulator_config), "--functions", ",".join(config.functions))
        models = None
    with running_emulator(models, run_dir, *extra) as emulator:
        held = " (CPU latency limit 0 µs held: idle CPUs poll)" if config.low_latency else ""
        print(f"  emulator on {emulator.base_url}{held}")
        for function in config.functions if plan.endpoint_cold_trials else ():
            results = run_dir / f"coldstart-endpoint-{function}.json"
            command = _python(
                "-m", "bench.coldstart", "--endpoint", emulator.base_url, "--function", function
            )
            command += ["--trials", str(plan.endpoint_cold_trials), "--warm", "100", "--no-progress"]
            command += ["--results", str(results), *_with_files(config)]
            log = results.with_suffix(".log")
            stage = f"cold starts through the emulator {function}"
            run_stage(stage, command, log, VERDICT_OK, writes=results)
            produced.append(results)
        for repeat in range(1, config.runs + 1):  # --runs N: whole rounds, so that drift hits both
            for function in config.functions:
                warm_up(
                    emulator.base_url,
                    function,
                    concurrency=plan.warm_environments,
                    requests_file=config.requests,
                    stage=stage_of(config),
                )
                produced.append(_locust(config, emulator.base_url, function, "steady", repeat))
            for function in config.functions:
                produced.append(_locust(config, emulator.base_url, function, "step", repeat))
        if plan.powertune_memory:
            produced.append(_powertune(config, emulator.base_url))
    produced += [path for path in [_fidelity(config)] if path is not None]
    report_dir = run_dir / "report"
    command = _python("-m", "reports", *map(str, produced), "-o", str(report_dir))
    run_stage("report", command, run_dir / "report.log")
    return produced


def _load(path: Path) -> Document | None:
    with contextlib.suppress(Exception):
        return read_document(path)
    return None


def summary(config: PipelineConfig, produced: list[Path]) -> str:
    """One line per function that answers the question (from its steady run's gates), then the
    headline ratios, read back from the results files."""
    documents = {path.name: document for path in produced if (document := _load(path))}
    plan = config.plan
    lines = [f"verdicts (steady, open loop {plan.steady_rate:g} req/s, p99 <= {plan.target_ms:g} ms):"]
    steady: dict[str, LocustEndpoint] = {}
    for function in config.functions:
        document = documents.get(f"locust-{function}-steady.json")
        if not isinstance(document, LocustRun):
            continue
        name = f"{stage_of(config)}/{function}"
        steady[function] = document.endpoints[name]
        lines.append(f"  {document.headline(name)}")
    if config.emulator_config is not None:
        lines += cold_start_lines(config.functions, documents)
    coldstart = documents.get("coldstart.json")
    rows = {row.name: row for row in coldstart.variants} if isinstance(coldstart, ColdstartRun) else {}
    # the tutorial's run: tutorial / lean; --model: the reference / the fastest variant that applies
    slow_name, fast_name = (*config.compared, "")[:2]
    slow_function, fast_function = (
        (*config.functions, "")[:2] if config.model is not None else (TUTORIAL_FUNCTION, LEAN_FUNCTION)
    )
    if slow_name in rows and fast_name in rows:
        slow_ms = rows[slow_name].cold_start_us.p50 / 1_000
        fast_ms = rows[fast_name].cold_start_us.p50 / 1_000
        ratio = slow_ms / fast_ms  # the fastest warm variant need not start faster (a user's model)
        faster = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
        lines.append(
            f"cold start p50 (fresh process): {slow_name} {slow_ms:,.1f} ms, {fast_name} {fast_ms:,.1f} ms: "
            + faster
        )
    if slow_function in steady and fast_function in steady:
        slow, fast = steady[slow_function].e2e_intended_us, steady[fast_function].e2e_intended_us
        if slow is not None and fast is not None and fast.p50:
            lines.append(
                f"warm end-to-end p50 through the emulator, {slow_name} / {fast_name}: "
                f"{slow.p50 / fast.p50:.1f}x"
            )
    if slow_name in rows and fast_name in rows and rows[fast_name].warm_us.p50:
        warm_ratio = rows[slow_name].warm_us.p50 / rows[fast_name].warm_us.p50
        lines.append(f"warm in-handler p50 (fresh process), {slow_name} / {fast_name}: {warm_ratio:.0f}x")
    sweep = documents.get("powertune.json")
    if isinstance(sweep, PowertuneRun):
        sizes = plan.powertune_memory.replace(",", ", ")
        lines.append(
            f"power tuning ({sizes} MB; warm Duration p{sweep.percentile:g} <= {plan.target_ms:g} ms):"
        )
        for function in sweep.functions:  # PASS, FAIL or "cannot be judged: …"
            lines.append(f"  {function.function}: {verdict_line(function, sweep.strategy)}")
    lines.append(f"report: {config.run_dir / 'report' / 'index.html'}")
    return "\n".join(lines)


def run(config: PipelineConfig, out: Callable[[str], None] = print) -> int:
    """0 when every stage ran (the verdicts are in the summary), 1 when a stage failed, 2 when a
    stage refused its input, 130 on Ctrl-C or SIGTERM."""
    started = time.monotonic()
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C: finally runs
    try:
        if config.model is not None:  # train, profile, generate the emulator config first
            config = prepare_model(config, run_stage, StageFailed)
        produced = execute(config)
    except StageFailed as exc:
        print(f"\npython -m bench: {exc}", file=sys.stderr)
        return 2 if exc.code == 2 else 1  # a stage's bad input (say --data) is the user's bad input
    except KeyboardInterrupt:
        print("\npython -m bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    out(summary(config, produced))
    out(f"done in {time.monotonic() - started:.0f} s; results in {config.run_dir}")
    return 0
