"""Closed-loop throughput of ``logit-lean`` through the emulator, Locust on the same machine.

    python docs/scripts/throughput.py                          # this checkout
    python docs/scripts/throughput.py --tree /tmp/before --tree .   # two checkouts, interleaved

Per round and per tree (rounds alternate the trees, so that each sees the same machine): the
tree's own emulator (``python -m handler.serve`` run in that tree, ``logit-lean`` alone at
1,769 MB, freeze and cgroups as configured by default), ``--users`` warm environments (each user's
first requests are its cold start, made before the timed run), then the tree's own Locust
harness: ``locust -f <tree>/locustfile.py --headless -u N -r N -t Ss --arrival closed
--scenario steady --payload tutorial`` against ``staging/logit-lean``. Throughput is the run's
stage ``achieved_rps`` from its results JSON (requests over the stage's seconds); errors are
counted from the same file as the harness's error gate counts them (a request cut off by the
run's end is not one). Everything runs on this machine's 2 CPUs: the emulator, its
environments and Locust share them, so the figure is the whole local stack's, not Lambda's.
Processes are stopped by PID (``bench.process``) when each round ends. Prints a table; writes
nothing but temporary files.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from bench.emulator_cost import QUERY, CostConfig, config_toml  # noqa: E402
from bench.process import _emulator_ready, start  # noqa: E402


def commit_of(tree: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"], capture_output=True
    )
    return (result.stdout.strip() or "?") + ("+changes" if dirty.stdout.strip() else "")


def warm(url: str, users: int) -> None:
    """Each of ``users`` concurrent clients sends 20 requests: the pool grows to ``users`` warm
    environments (cold starts happen here, not in the timed run)."""

    def client(_: int) -> None:
        for _ in range(20):
            with urllib.request.urlopen(url, timeout=60) as response:
                response.read()

    with concurrent.futures.ThreadPoolExecutor(users) as pool:
        list(pool.map(client, range(users)))


def one_round(tree: Path, work: Path, users: int, seconds: int) -> tuple[float, int, int]:
    """(achieved req/s, requests, failures) for one Locust run against ``tree``'s emulator."""
    config = work / "emulator.toml"
    config.write_text(config_toml(CostConfig(0, 0, 1, 1769, None), tree), encoding="utf-8")
    command = [sys.executable, "-m", "handler.serve", "--port", "0", "--quiet", "--config", str(config)]
    command += ["--models", str(tree / "models"), "--log-file", str(work / "emulator.log")]
    with start(
        command, work / "emulator.out", name="the emulator", ready=_emulator_ready, cwd=tree
    ) as emulator:
        base = str(emulator.ready)
        warm(f"{base}/staging/logit-lean?{QUERY}", users)
        results = work / "locust.json"
        locust = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(tree / "locustfile.py"),
            "--headless",
            "--only-summary",
        ]
        locust += ["--host", base, "--function", "staging/logit-lean", "-u", str(users), "-r", str(users)]
        locust += [
            "-t",
            f"{seconds}s",
            "--arrival",
            "closed",
            "--scenario",
            "steady",
            "--payload",
            "tutorial",
        ]
        locust += ["--results", str(results)]
        subprocess.run(
            locust, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 120
        )
    document = json.loads(results.read_text(encoding="utf-8"))
    stage = document["stages"][0]
    endpoint = next(iter(document["endpoints"].values()))
    # as the harness's error gate counts (bench.verdict): a request cut off by the run's end
    # ("cancelled") is not a failure
    failed = sum(
        count for outcome, count in endpoint["outcomes"].items() if outcome not in ("2xx", "cancelled")
    )
    return stage["achieved_rps"], endpoint["requests"], failed + endpoint["verify_failures"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tree", type=Path, action="append", help="a checkout (repeatable; default: this one)"
    )
    parser.add_argument("--users", type=int, default=4, help="Locust users, closed loop (4)")
    parser.add_argument("--seconds", type=int, default=20, help="each Locust run (20)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per tree, interleaved (3)")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in (args.tree or [PROJECT])]
    for tree in trees:
        if not (tree / "locustfile.py").is_file() or not (tree / "models" / "logit.json").is_file():
            parser.error(f"{tree}: no locustfile.py or models/logit.json (python -m training there)")
    found: dict[Path, list[tuple[float, int, int]]] = {tree: [] for tree in trees}
    for number in range(1, args.rounds + 1):
        for tree in trees:
            with tempfile.TemporaryDirectory() as work:
                found[tree].append(one_round(tree, Path(work), args.users, args.seconds))
            rps, requests, failures = found[tree][-1]
            print(
                f"round {number} {tree}: {rps:,.1f} req/s ({requests:,} requests, {failures} failed)",
                flush=True,
            )
    print(f"| tree (commit) | req/s, median of {args.rounds} (min-max) | failed |")
    print("|---|---:|---:|")
    for tree, runs in found.items():
        rates = [rps for rps, _, _ in runs]
        cell = f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"
        print(f"| {tree} ({commit_of(tree)}) | {cell} | {sum(f for _, _, f in runs)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
