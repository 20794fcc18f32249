"""``python -m bench.hardening.overload``: drive a function at 3× its capacity and check nothing breaks.

The capacity is the rate the endpoint is provisioned for: the API Gateway stage throttle
(``--capacity`` req/s; burst = 100 ms of it). Without ``--capacity`` it is measured: a
closed-loop Locust run (4 users, 5 s) finds what this machine serves at most, generator
included, and the capacity is a third of that, so that 3× the capacity is load this machine
can generate and answer at all (on 2 cores the generator, the gateway and the environments
share the CPU).

Then, on a fresh emulator throttled at the capacity (the function alone; Lambda's default
concurrency limit of 10):

1. warm-up: ``--warm-s`` at the capacity, so the environments that rate needs are running
   (scaling from cold under a spike is the ``spike`` scenario's subject, not this one's);
2. Locust's ``spike`` scenario, open loop: *baseline* at ``--base-fraction`` of the capacity
   (the unloaded reference), *overload* at ``--factor`` × the capacity for ``--overload-s``,
   *recovery* at the baseline rate again; every stage ``--overload-s`` long;
3. the emulator's RSS (the gateway process) sampled every 100 ms throughout.

Goals, each reported with its measured figure (exit 1 if one is missed):
- *accounted*: sent = 2xx + 4xx + 429 + 5xx + other + connection errors + cancelled, exactly;
- *no failures*: no 5xx, no connection error;
- *excess refused*: 429s during the overload, and their p99 within ``--p99-factor`` × the
  baseline's 2xx p99 (a refusal is no slower than a served request);
- *admitted held*: the overload stage's 2xx p99 within ``--p99-factor`` × the baseline's;
- *recovered*: in the recovery stage, 3 seconds in a row with a 2xx p99 within
  ``--p99-factor`` × the baseline's begin no later than ``--recovery-goal-s`` after the
  overload ends (later seconds over that bound are counted, beside the baseline's own);
- *memory bounded*: the gateway's peak RSS during the overload at most ``--rss-growth-mib``
  above its RSS when the overload began.

Results (``kind: overload``) in ``--out`` (default ``results/overload-<UTC>/``): ``overload.json``
with the figures, the Locust results of each run and the logs. p99s per stage and per second
come from Locust's 2-significant-digit timeline histograms (±1 %).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from bench.cli import positive_float
from bench.functions import FunctionsError, chosen, needs_models
from bench.functions import load as load_functions
from bench.load.command import LocustCommand
from bench.machine import collect_metadata
from bench.pipeline import LOCUST_OK, StageFailed, run_stage, warm_up
from bench.process import EmulatorError, running_emulator
from bench.requests import RequestsFileError, read_requests
from bench.results import EXIT_CODES, OverloadRun, utc_stamp, write_json_atomic
from bench.results.gate import goal, judge

STAGE = "staging"
CAPACITY_USERS = 4
CAPACITY_RUN_S = 5
RSS_SAMPLE_S = 0.1
RECOVERY_RUN = 3  # consecutive seconds back within the bound


@contextlib.contextmanager
def pinned(server_pid: int | None, enabled: bool) -> Iterator[dict | None]:
    """With ``enabled`` and at least 2 CPUs: the server process and its descendants (and the
    environments it starts later, which inherit it) on every CPU but the last; this process,
    and so the Locust runs it starts, on the last. The generator then cannot take the CPU the
    admitted requests need, as on AWS, where the client is elsewhere."""
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled or server_pid is None or len(cpus) < 2:
        yield None
        return
    server_cpus, generator_cpus = cpus[:-1], cpus[-1:]
    server = psutil.Process(server_pid)
    for process in (server, *server.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            process.cpu_affinity(server_cpus)
    os.sched_setaffinity(0, generator_cpus)
    try:
        yield {"server_cpus": server_cpus, "generator_cpus": generator_cpus}
    finally:
        os.sched_setaffinity(0, cpus)


@dataclass(frozen=True)
class Plan:
    function: str
    capacity_rps: float | None  # None: measure it
    factor: float
    base_fraction: float
    overload_s: float
    warm_s: float
    p99_factor: float
    recovery_goal_s: float
    rss_growth_mib: float
    pin: bool = False
    config: str | None = None  # --config FILE: the emulator's configuration (the function's)
    requests: str | None = None  # --requests FILE: what Locust sends (bench.requests)

    def emulator_args(self) -> tuple[str, ...]:
        config = ("--config", self.config) if self.config else ()
        return (*config, "--functions", self.function)

    def locust_args(self) -> tuple[str, ...]:
        return ("--requests", self.requests) if self.requests else ()

    def spike_users(self) -> int:
        """Users at the peak, with 1 user at the baseline: each user keeps its share of the rate."""
        return max(2, round(self.factor / self.base_fraction))


def _locust(host: str, plan: Plan, results: Path, models: Path, timeout_s: float, **load) -> dict:
    """One headless Locust run (``load``: :class:`LocustCommand` fields), its log beside ``results``."""
    # 429s are what the overload is for: the verdict counts them apart (--throttling-expected).
    run = LocustCommand(
        host, (f"{_api_stage(plan)}/{plan.function}",), results, models=models, target_ms=1000.0,
        extra=("--throttling-expected", *plan.locust_args()), **load,
    )  # fmt: skip
    log = results.with_suffix(".log")
    run_stage(log.stem, run.argv(), log, LOCUST_OK, timeout_s=timeout_s, writes=results)
    return json.loads(results.read_text(encoding="utf-8"))


def _api_stage(plan: Plan) -> str:
    return load_functions(Path(plan.config)).stage if plan.config else STAGE


def _models(plan: Plan, models: Path) -> Path | None:
    """``--config``: the file as is (its own MODEL_URIs); else the trained models."""
    return None if plan.config else models


def _warm_up(base_url: str, plan: Plan) -> None:
    requests = Path(plan.requests) if plan.requests else None
    warm_up(base_url, plan.function, requests_file=requests, stage=_api_stage(plan))


def measure_capacity(plan: Plan, models: Path, out: Path) -> float:
    """The most 2xx/s this machine serves closed loop, generator included."""
    with (
        running_emulator(_models(plan, models), out / "capacity-emulator", *plan.emulator_args()) as emulator,
        pinned(emulator.process.pid, plan.pin),
    ):
        _warm_up(emulator.base_url, plan)
        document = _locust(
            emulator.base_url, plan, out / "locust-capacity.json", models, timeout_s=120,
            users=CAPACITY_USERS, spawn_rate=CAPACITY_USERS, run_time_s=CAPACITY_RUN_S,
        )  # fmt: skip
    endpoint = next(iter(document["endpoints"].values()))
    seconds = [row for row in endpoint["timeline"] if row["ok"]][1:-1] or endpoint["timeline"]
    return sum(row["ok"] for row in seconds) / max(len(seconds), 1)


class RssSampler:
    """The process's RSS every ``interval_s`` on a thread, as (unix time, bytes)."""

    def __init__(self, pid: int, interval_s: float = RSS_SAMPLE_S) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), self.process.memory_info().rss))
            except psutil.Error:
                return
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _stage(endpoint: dict, name: str) -> dict:
    for stage in endpoint["stages"]:
        if stage["name"] == name:
            return stage
    raise ValueError(f"the Locust results have no {name!r} stage (stopped early?)")


def recovery_seconds(endpoint: dict, threshold_us: float, run: int = RECOVERY_RUN) -> float | None:
    """Seconds from the overload's end to the end of the first full second of the recovery
    stage that begins ``run`` consecutive seconds with a 2xx p99 within ``threshold_us``;
    None if none does. (A per-second p99 of ~100 requests is nearly their maximum, so a single
    slow request later on is noise, not a relapse; those seconds are counted apart.)"""
    recovery = _stage(endpoint, "recovery")
    start, end = recovery["start_unix"], recovery["end_unix"]
    full = [row for row in endpoint["timeline"] if row["t"] >= start and row["t"] + 1 <= end]
    within = [row["ok_p99_us"] is not None and row["ok_p99_us"] <= threshold_us for row in full]
    for index in range(len(full) - run + 1):
        if all(within[index : index + run]):
            return round(full[index]["t"] + 1 - start, 3)
    return None


def seconds_over(endpoint: dict, stage_name: str, threshold_us: float) -> int:
    """Full seconds of a stage whose 2xx p99 is over ``threshold_us``."""
    stage = _stage(endpoint, stage_name)
    return sum(
        1
        for row in endpoint["timeline"]
        if row["t"] >= stage["start_unix"]
        and row["t"] + 1 <= stage["end_unix"]
        and row["ok_p99_us"] is not None
        and row["ok_p99_us"] > threshold_us
    )


def analyse(plan: Plan, capacity_rps: float, locust: dict, rss: list[tuple[float, int]]) -> dict:
    """The figures and goals from the overload run's Locust results and RSS samples (pure)."""
    endpoint = locust["endpoints"][f"{STAGE}/{plan.function}"]
    outcomes = endpoint["outcomes"]
    baseline, overload = _stage(endpoint, "baseline"), _stage(endpoint, "spike")
    unloaded_p99 = baseline["ok_p99_us"]
    limit_us = plan.p99_factor * unloaded_p99
    recovered_after = recovery_seconds(endpoint, limit_us)
    throttled = endpoint["throttled_us"]
    during = [value for t, value in rss if overload["start_unix"] <= t <= overload["end_unix"]]
    before = [value for t, value in rss if t < overload["start_unix"]]
    rss_start = before[-1] if before else (during[0] if during else 0)
    rss_peak = max(during, default=rss_start)
    total = sum(outcomes.values())
    goals = [
        goal(
            "accounted",
            endpoint["sent"] == total,
            f"sent {endpoint['sent']:,} = outcomes {total:,}",
            "sent = sum of outcomes",
        ),
        goal(
            "no failures",
            outcomes["5xx"] == 0 and outcomes["connection_error"] == 0,
            f"5xx {outcomes['5xx']}, connection errors {outcomes['connection_error']}",
            "none",
        ),
        goal(
            "excess refused quickly",
            overload["throttled"] > 0 and throttled["count"] > 0 and throttled["p99"] <= limit_us,
            f"{overload['throttled']:,} 429s, p99 {throttled['p99']:.0f} µs",
            f"429s, p99 <= {limit_us:.0f} µs",
        ),
        goal(
            "admitted held",
            overload["ok_p99_us"] is not None and overload["ok_p99_us"] <= limit_us,
            f"2xx p99 {overload['ok_p99_us']} µs (baseline {unloaded_p99} µs)",
            f"<= {plan.p99_factor:g}x baseline = {limit_us:.0f} µs",
        ),
        goal(
            "recovered",
            recovered_after is not None and recovered_after <= plan.recovery_goal_s,
            "never" if recovered_after is None else f"{recovered_after:g} s",
            f"<= {plan.recovery_goal_s:g} s to {RECOVERY_RUN} s in a row of 2xx p99 <= {limit_us:.0f} µs",
        ),
        goal(
            "memory bounded",
            (rss_peak - rss_start) <= plan.rss_growth_mib * 2**20,
            f"peak {rss_peak / 2**20:.1f} MiB, +{(rss_peak - rss_start) / 2**20:.1f} MiB",
            f"<= +{plan.rss_growth_mib:g} MiB",
        ),
    ]
    return {
        "capacity_rps": capacity_rps,
        "offered_rps": {
            "baseline": capacity_rps * plan.base_fraction,
            "overload": capacity_rps * plan.base_fraction * plan.spike_users(),
        },
        "stages": {
            name: {
                key: stage[key]
                for key in ("achieved_rps", "ok", "throttled", "errors", "ok_p50_us", "ok_p99_us")
            }
            for name, stage in (
                ("baseline", baseline),
                ("overload", overload),
                ("recovery", _stage(endpoint, "recovery")),
            )
        },
        "outcomes": outcomes,
        "sent": endpoint["sent"],
        "throttled_us": {key: throttled[key] for key in ("count", "p50", "p99", "max")},
        "recovery_s": recovered_after,
        "seconds_over_bound": {
            "bound_us": limit_us,
            "baseline": seconds_over(endpoint, "baseline", limit_us),
            "recovery": seconds_over(endpoint, "recovery", limit_us),
        },
        "gateway_rss_mib": {
            "at_overload_start": round(rss_start / 2**20, 1),
            "peak_during_overload": round(rss_peak / 2**20, 1),
            "peak_whole_run": round(max((value for _, value in rss), default=0) / 2**20, 1),
            "end": round(rss[-1][1] / 2**20, 1) if rss else None,
            "samples": len(rss),
        },
        "schedule": locust.get("schedule"),
        "gates": goals,
        "status": judge(goals),
    }


def run(plan: Plan, models: Path, out: Path) -> dict:
    capacity = plan.capacity_rps
    if capacity is None:
        machine = measure_capacity(plan, models, out)
        capacity = max(50.0, math.floor(machine / plan.factor / 50) * 50)
        print(f"  capacity: {machine:.0f} req/s served at most here; provisioned at {capacity:g} req/s")
    burst = max(1, round(capacity / 10))
    base_rate = capacity * plan.base_fraction
    throttle = ("--throttle-rate", f"{capacity:g}", "--throttle-burst", str(burst))
    throttle += ("--lambda-throttle-status", "429")  # a concurrency throttle refuses, as the bucket
    emulator_args = (*plan.emulator_args(), *throttle)
    with (
        running_emulator(_models(plan, models), out / "emulator", *emulator_args) as emulator,
        pinned(emulator.process.pid, plan.pin) as placement,
    ):
        _warm_up(emulator.base_url, plan)
        _locust(
            emulator.base_url, plan, out / "locust-warm.json", models, timeout_s=plan.warm_s + 120,
            users=1, spawn_rate=1, run_time_s=math.ceil(plan.warm_s), arrival="open", rate=capacity,
        )  # fmt: skip
        with RssSampler(emulator.process.pid) as sampler:
            locust = _locust(
                emulator.base_url, plan, out / "locust-overload.json", models,
                timeout_s=3 * plan.overload_s + 120, users=1, spawn_rate=1, scenario="spike",
                spike_users=plan.spike_users(), step_time_s=plan.overload_s, arrival="open", rate=base_rate,
            )  # fmt: skip
    return {**analyse(plan, capacity, locust, sampler.samples), "cpu_placement": placement}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hardening.overload", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--function", default="logit-lean", help="emulator function (default logit-lean)")
    add("--models", type=Path, default=Path("models"), help="trained models (python -m training)")
    add("--capacity", type=positive_float, default=None, help="req/s the stage admits (default: measured)")
    add("--factor", type=positive_float, default=3.0, help="overload = factor x capacity (default 3)")
    add("--base-fraction", type=positive_float, default=0.25, help="baseline = this x capacity (0.25)")
    add("--overload-s", type=positive_float, default=30.0, help="seconds per stage (default 30)")
    add("--warm-s", type=positive_float, default=5.0, help="warm-up at the capacity (default 5 s)")
    add("--p99-factor", type=positive_float, default=2.0, help="2xx/429 p99 goal vs baseline (2)")
    add("--recovery-goal-s", type=positive_float, default=5.0, help="recovery goal (default 5 s)")
    add("--rss-growth-mib", type=positive_float, default=64.0, help="gateway RSS growth goal (64)")
    add("--pin", action="store_true", help="generator on the last CPU, emulator on the others")
    add("--out", type=Path, default=None, help="default results/overload-<UTC>/")
    add("--config", type=Path, help="the emulator's configuration (default handler/local/default.toml)")
    add("--requests", type=Path, help="a requests file: what Locust sends (docs/requests.md)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.base_fraction >= 1 or args.factor <= 1:
        parser.error("--base-fraction must be below 1 and --factor above 1")
    try:
        chosen(args.config, [args.function])
        if args.requests is not None:
            read_requests(args.requests).require_http("Locust")
    except (FunctionsError, RequestsFileError) as exc:
        print(f"python -m bench.hardening.overload: {exc}", file=sys.stderr)
        return 2
    if needs_models(args.config, [args.function]) and not (args.models / "manifest.json").is_file():
        parser.error(f"--models {str(args.models)!r}: no manifest.json (run python -m training)")
    plan = Plan(
        function=args.function,
        capacity_rps=args.capacity,
        factor=args.factor,
        base_fraction=args.base_fraction,
        overload_s=args.overload_s,
        warm_s=args.warm_s,
        p99_factor=args.p99_factor,
        recovery_goal_s=args.recovery_goal_s,
        rss_growth_mib=args.rss_growth_mib,
        pin=args.pin,
        config=str(args.config.resolve()) if args.config else None,
        requests=str(args.requests.resolve()) if args.requests else None,
    )
    out = args.out or Path("results") / f"overload-{utc_stamp()}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"overload: {plan.function}, {plan.factor:g}x capacity for {plan.overload_s:g} s; output in {out}")
    try:
        figures = run(plan, args.models.resolve(), out)
    except (StageFailed, EmulatorError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metadata = collect_metadata({k: str(v) for k, v in vars(args).items()})
    document = OverloadRun(metadata=metadata, plan=asdict(plan), **figures)
    write_json_atomic(out / "overload.json", document)
    for gate in document.gates:
        print(f"  {gate.message}")
    print(f"{document.status}: {out / 'overload.json'}")
    return EXIT_CODES[document.status]


if __name__ == "__main__":
    sys.exit(main())
