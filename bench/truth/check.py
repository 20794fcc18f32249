"""``python -m bench.truth.check``: the Locust harness measured against endpoints of known latency.

Starts ``bench.truth.server`` on 127.0.0.1 and runs ``locust -f locustfile.py`` (headless, a
subprocess, as a user would) three times:

1. **Accuracy**: closed loop, 1 user, against ``/truth/2000`` (a 2 ms busy-wait). The truth
   is what that endpoint takes end to end for a minimal client: a raw ``http.client`` loop on
   one keep-alive connection (``bench.endpoint``), i.e. the 2,000 µs plus the loopback and
   server transport, which no client can avoid. The harness's end-to-end p50 must be within
   5% + 50 µs of it; the difference is the harness's own client-side overhead. The server's
   measured busy time is printed beside it.
2. **Coordinated omission**: open loop at a fixed ``--rate`` (default 1,000 req/s) against
   ``/stall/<after>/200`` (one 200 ms stall of the whole server), with one request in flight
   at a time (``--max-inflight 1``, as one wrk2 connection): sends due during the stall go
   out late, so the p99 from the *intended* send shows the stall and the p99 from the
   *actual* send does not. Then with the default ``--max-inflight``, where sends never wait
   and both show it. Schedule lag p99 too.
3. **Generator capacity**: closed loop, ``--users`` users in one Locust process (one core),
   against ``/truth/0``: requests per second the harness can drive per core.

Prints a Markdown table and writes ``results/harness-check-<UTC>.json`` plus each run's
Locust results next to it. Figures are this machine's; re-run to reproduce.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.endpoint import EndpointConfig, measure_warm
from bench.load.command import LocustCommand
from bench.machine import collect_metadata
from bench.process import Child, line_with, run_to_completion, start
from bench.results import utc_stamp, write_json_atomic
from bench.target import TRUTH

TRUTH_US = 2_000
STALL_MS = 200


def start_truth_server(output: Path) -> tuple[Child, str]:
    """``bench.truth.server``, ready; with its base URL. Stop it with ``with`` (or ``.stop()``)."""
    server = start([sys.executable, "-m", "bench.truth.server"], output, ready=line_with("truth: "))
    return server, str(server.ready).split(" ", 1)[1].strip()


def run_locust(host: str, results: Path, seconds: int, **load) -> dict:
    """One headless Locust run (``load``: :class:`LocustCommand` fields), its log beside ``results``."""
    run = LocustCommand(host, results=results, run_time_s=seconds, target_ms=1000.0, **load)
    locust = run_to_completion(run.argv(), results.with_suffix(".log"), timeout_s=seconds + 120)
    if not results.is_file():
        raise RuntimeError(f"locust wrote no results: {locust.tail()} (log: {locust.output})")
    return json.loads(results.read_text(encoding="utf-8"))


def accuracy(out: Path, seconds: int) -> dict:
    server, base = start_truth_server(out / "accuracy-server.out")
    with server:
        document = run_locust(base, out / "accuracy.json", seconds, users=1, functions=(f"truth/{TRUTH_US}",))
        raw = measure_warm(
            EndpointConfig(f"{base}/truth/{TRUTH_US}", requests=2_000, warmup=100, cold_trials=0,
                           function=None, lambda_endpoint=None, results=None)
        )  # fmt: skip
    endpoint = document["endpoints"][f"truth/{TRUTH_US}"]
    p50 = endpoint["e2e_us"]["p50"]
    truth = raw.e2e_us.p50
    allowed = 0.05 * truth + 50
    return {
        "busy_wait_us": TRUTH_US,
        "truth_us": truth,
        "harness_e2e_p50_us": p50,
        "harness_e2e_p99_us": endpoint["e2e_us"]["p99"],
        "server_busy_p50_us": endpoint["handler_us"]["p50"],
        "allowed_error_us": round(allowed, 1),
        "error_us": round(p50 - truth, 1),
        "within": abs(p50 - truth) <= allowed,
        "samples": endpoint["e2e_us"]["count"],
    }


def omission(out: Path, seconds: int, rate: float, max_inflight: int) -> dict:
    server, base = start_truth_server(out / f"omission-{max_inflight}-server.out")
    after_ms = 1_000 * seconds // 2 + 1_500  # the middle of the run, after Locust's start-up
    function = f"stall/{after_ms}/{STALL_MS}"
    with server:
        document = run_locust(
            base, out / f"omission-{max_inflight}.json", seconds, users=1, functions=(function,),
            arrival="open", rate=rate, max_inflight=max_inflight,
        )  # fmt: skip
    endpoint = document["endpoints"][function]
    return {
        "max_inflight": max_inflight,
        "rate": rate,
        "stall_ms": STALL_MS,
        "sent": endpoint["sent"],
        "intended_p99_us": endpoint["e2e_intended_us"]["p99"],
        "intended_max_us": endpoint["e2e_intended_us"]["max"],
        "actual_p99_us": endpoint["e2e_us"]["p99"],
        "actual_p50_us": endpoint["e2e_us"]["p50"],
        "schedule_lag_p50_us": endpoint["schedule_lag_us"]["p50"],
        "schedule_lag_p99_us": endpoint["schedule_lag_us"]["p99"],
        "missed_sends": endpoint["missed_sends"],
    }


def capacity(out: Path, seconds: int, users: int) -> dict:
    server, base = start_truth_server(out / "capacity-server.out")
    with server:
        document = run_locust(
            base, out / "capacity.json", seconds, users=users, spawn_rate=users, functions=("truth/0",)
        )
    endpoint = document["endpoints"]["truth/0"]
    timeline = [row for row in document["timeline"] if row["requests"]]
    steady = timeline[1:-1] or timeline  # drop the partial first and last seconds
    return {
        "users": users,
        "requests": endpoint["sent"],
        "requests_per_s_per_core": round(sum(r["requests"] for r in steady) / max(len(steady), 1), 1),
        "e2e_p50_us": endpoint["e2e_us"]["p50"],
        "e2e_p99_us": endpoint["e2e_us"]["p99"],
    }


def markdown(figures: dict) -> str:
    a, c = figures["accuracy"], figures["capacity"]
    verdict = "within" if a["within"] else "OUTSIDE"
    rows = [
        "| check | figure |",
        "|---|---|",
        f"| 2 ms busy-wait, truth (raw http.client e2e p50) | {a['truth_us']:.0f} µs "
        f"(server busy {a['server_busy_p50_us']:.0f} µs) |",
        f"| same, harness e2e p50 | {a['harness_e2e_p50_us']:.0f} µs: {a['error_us']:+.0f} µs "
        f"(allowed ±{a['allowed_error_us']:.0f}: {verdict}) |",
    ]
    for o in figures["omission"]:
        where = f"{o['stall_ms']} ms stall, {o['rate']:.0f} req/s, max-inflight {o['max_inflight']}"
        rows += [
            f"| {where}: p99 from intended send | {o['intended_p99_us']:.0f} µs "
            f"(max {o['intended_max_us']:.0f}) |",
            f"| {where}: p99 from actual send | {o['actual_p99_us']:.0f} µs |",
            f"| {where}: schedule lag p50 / p99 | {o['schedule_lag_p50_us']:.0f} / "
            f"{o['schedule_lag_p99_us']:.0f} µs; late (missed) sends {o['missed_sends']} |",
        ]
    rows.append(
        f"| generator capacity, {c['users']} users, one process | {c['requests_per_s_per_core']:.0f} req/s "
        f"(e2e p50 {c['e2e_p50_us']:.0f} µs) |"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.truth.check", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="per run (default 10)")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop rate (default 1000)")
    parser.add_argument("--users", type=int, default=8, help="capacity run users (default 8)")
    parser.add_argument("--out", type=Path, default=None, help="directory for results")
    args = parser.parse_args(argv)
    if args.seconds < 3 or args.rate <= 0 or args.users < 1:
        parser.error("--seconds must be >= 3, --rate > 0, --users >= 1")
    out = args.out or Path("results") / f"harness-check-{utc_stamp()}"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "accuracy": accuracy(out, args.seconds),
        "omission": [omission(out, args.seconds, args.rate, cap) for cap in (1, 1000)],
        "capacity": capacity(out, args.seconds, args.users),
    }
    document = {
        "kind": "harness",
        "schema_version": 1,
        "metadata": collect_metadata(vars(args) | {"out": str(out)}, resource_model=TRUTH).to_dict(),
        **figures,
    }
    write_json_atomic(out / "harness-check.json", document)
    print(markdown(figures))
    print(f"results: {out / 'harness-check.json'}")
    return 0 if figures["accuracy"]["within"] else 1


if __name__ == "__main__":
    sys.exit(main())
