"""``python -m bench.hardening.faults``: inject every fault the emulator must survive, many times over.

Each round, for each fault, through the gateway and through the Lambda Invoke API:

| fault | function | gateway | Invoke API (``X-Amz-Function-Error: Unhandled``) |
|---|---|---|---|
| handler raises | ``faulty?fault=raise`` | 502 | ``RuntimeError`` |
| ``os._exit`` | ``fault=exit`` | 502 | ``Runtime.ExitError`` |
| SIGKILL mid-request | ``fault=sigkill`` | 502 | ``Runtime.ExitError`` |
| runs past its timeout (1 s) | ``fault=sleep`` | 502 | ``Sandbox.Timedout`` |
| reply over 6 MB | ``fault=huge`` | 502 | ``Function.ResponseSizeTooLarge`` |
| malformed proxy reply | ``fault=malformed`` | 502 | (a valid Invoke result) |
| import fails | ``broken-import`` | 502 | ``Runtime.ImportModuleError`` |
| init over the limit | ``slow-init`` | 502 | ``Sandbox.Timedout`` |

and right after each one, a normal request to ``faulty`` must succeed (200, no function
error). The init limit is 2 s here instead of Lambda's 10 s (``init_timeout_s`` in the
generated config) so that a round takes seconds; the code path is the same. At the end the
emulator is stopped with SIGINT and no process it started may remain. The functions are in
``bench/hardening/faultfunctions/``. Results (``kind: faults``) in ``--results``; exit 1 if any fault
got the wrong answer, a recovery request failed or a process outlived the emulator.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.cli import positive_int
from bench.machine import collect_metadata
from bench.process import EmulatorError, running_emulator
from bench.results import EXIT_CODES, PROJECT_ROOT, FaultsRun, Gate, utc_stamp, write_json_atomic
from bench.results.gate import goal, judge

FUNCTIONS_DIR = PROJECT_ROOT / "bench" / "hardening" / "faultfunctions"
INTERNAL_ERROR = {"message": "Internal server error"}


@dataclass(frozen=True)
class Fault:
    name: str
    function: str
    query: str
    invoke_error: str | None  # errorType at the Invoke API; None: not a function error there


FAULTS = (
    Fault("handler raises", "faulty", "fault=raise", "RuntimeError"),
    Fault("os._exit", "faulty", "fault=exit", "Runtime.ExitError"),
    Fault("SIGKILL mid-request", "faulty", "fault=sigkill", "Runtime.ExitError"),
    Fault("past its timeout", "faulty", "fault=sleep&seconds=3", "Sandbox.Timedout"),
    Fault("reply over 6 MB", "faulty", "fault=huge", "Function.ResponseSizeTooLarge"),
    Fault("malformed proxy reply", "faulty", "fault=malformed", None),
    Fault("import fails", "broken-import", "", "Runtime.ImportModuleError"),
    Fault("init over the limit", "slow-init", "", "Sandbox.Timedout"),
)


def config_text(init_timeout_s: float) -> str:
    functions = [
        ("faulty", "timeout_s = 1\nreserved_concurrency = 3\n"),
        ("slow-init", ""),
        ("broken-import", ""),
    ]
    text = f'stage = "staging"\nport = 0\ninit_timeout_s = {init_timeout_s:g}\n'
    for name, extra in functions:
        handler = "broken_import.handler" if name == "broken-import" else "faulty.handler"
        text += (
            f'\n[[functions]]\nname = "{name}"\nhandler = "{handler}"\ncode_dir = "{FUNCTIONS_DIR}"\n{extra}'
        )
        if name == "slow-init":
            text += f'[functions.env]\nINIT_SLEEP_S = "{init_timeout_s * 2.5:g}"\n'
    return text


def _request(url: str, data: bytes | None = None, timeout_s: float = 60) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _query_dict(query: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in query.split("&") if part)


@dataclass
class Tally:
    injected: int = 0
    expected_answer: int = 0
    recovered: int = 0
    wrong: list[str] = field(default_factory=list)
    by_fault: dict[str, Counter] = field(default_factory=dict)

    def note(self, fault: Fault, surface: str, ok: bool, recovered: bool, detail: str) -> None:
        self.injected += 1
        self.expected_answer += ok
        self.recovered += recovered
        counts = self.by_fault.setdefault(fault.name, Counter())
        counts[f"{surface} ok"] += ok
        counts[f"{surface} recovered"] += recovered
        if not ok or not recovered:
            self.wrong.append(
                f"{fault.name} via {surface}: {detail}; next request {'ok' if recovered else 'FAILED'}"
            )


def _recovery_ok(base: str) -> bool:
    status, _, _ = _request(f"{base}/staging/faulty?fault=none")
    invoke_status, invoke_headers, _ = _request(
        f"{base}/2015-03-31/functions/faulty/invocations", json.dumps({"queryStringParameters": {}}).encode()
    )
    return status == 200 and invoke_status == 200 and "X-Amz-Function-Error" not in invoke_headers


def inject(base: str, fault: Fault, tally: Tally) -> None:
    url = f"{base}/staging/{fault.function}" + (f"?{fault.query}" if fault.query else "")
    status, _, body = _request(url)
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    tally.note(
        fault,
        "gateway",
        status == 502 and answer == INTERNAL_ERROR,
        _recovery_ok(base),
        f"{status} {body[:80]!r}",
    )
    event = json.dumps({"queryStringParameters": _query_dict(fault.query)}).encode()
    status, headers, body = _request(f"{base}/2015-03-31/functions/{fault.function}/invocations", event)
    if fault.invoke_error is None:
        ok = status == 200 and "X-Amz-Function-Error" not in headers
    else:
        try:
            error_type = json.loads(body).get("errorType")
        except (ValueError, AttributeError):
            error_type = None
        ok = (
            status == 200
            and headers.get("X-Amz-Function-Error") == "Unhandled"
            and error_type == fault.invoke_error
        )
    tally.note(
        fault,
        "invoke",
        ok,
        _recovery_ok(base),
        f"{status} {headers.get('X-Amz-Function-Error')} {body[:80]!r}",
    )


def run(rounds: int, init_timeout_s: float, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    config = work / "faults.toml"
    config.write_text(config_text(init_timeout_s), encoding="utf-8")
    tally = Tally()
    started = time.perf_counter_ns()
    with running_emulator(None, work, "--config", str(config)) as emulator:
        for round_number in range(rounds):
            for fault in FAULTS:
                inject(emulator.base_url, fault, tally)
            print(
                f"  round {round_number + 1}/{rounds}: {tally.injected} faults, {len(tally.wrong)} wrong",
                flush=True,
            )
        # SIGINT, as Ctrl-C: the emulator must drain, exit 0 and leave no environment behind
        # (what it needed SIGKILL for shows as a negative exit code or as leftovers).
        leftovers = emulator.stop(grace_s=30)
        exit_code = emulator.process.returncode
    seconds = (time.perf_counter_ns() - started) / 1e9
    log = (work / "emulator.log").read_text(encoding="utf-8", errors="replace")
    return {
        "rounds": rounds,
        "faults": [asdict(fault) for fault in FAULTS],
        "injected": tally.injected,
        "expected_answer": tally.expected_answer,
        "recovered": tally.recovered,
        "wrong": tally.wrong[:50],
        "by_fault": {name: dict(counts) for name, counts in tally.by_fault.items()},
        "environments_started": len(re.findall(r"Init Duration", log)),
        "emulator_exit_code": exit_code,
        "leftover_processes": len(leftovers),
        "seconds": round(seconds, 1),
        "init_timeout_s": init_timeout_s,
        "gates": (gates := _gates(tally, exit_code, len(leftovers))),
        "status": judge(gates),
    }


def _gates(tally: Tally, exit_code: int | None, leftovers: int) -> list[Gate]:
    wrong = len(tally.wrong)
    return [
        goal(
            "AWS's answer, then recovery",
            not tally.wrong,
            f"{tally.injected - wrong:,} of {tally.injected:,} faults answered as AWS does and followed by a "
            "successful request",
            "every one",
            samples=tally.injected,
        ),
        goal("clean exit on SIGINT", exit_code == 0, f"exit code {exit_code}", "0"),
        goal("no process left", leftovers == 0, f"{leftovers} processes left after SIGINT", "none"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hardening.faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=positive_int, default=10, help="rounds of every fault (default 10)")
    parser.add_argument("--results", type=Path, default=None, help="default results/faults-<UTC>.json")
    args = parser.parse_args(argv)
    results = args.results or Path("results") / f"faults-{utc_stamp()}.json"
    try:
        figures = run(args.rounds, 2.0, results.parent / f"{results.stem}-emulator")
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metadata = collect_metadata({k: str(v) for k, v in vars(args).items()})
    document = FaultsRun(metadata=metadata, **figures)
    write_json_atomic(results, document)
    print(
        f"{figures['injected']} faults in {figures['seconds']} s: {figures['expected_answer']} answered as "
        f"AWS does, {figures['recovered']} followed by a successful request; "
        f"{figures['environments_started']} environments started; "
        f"{figures['leftover_processes']} processes left after SIGINT"
    )
    for line in figures["wrong"]:
        print(f"  WRONG: {line}")
    print(f"{document.status}: {results}")
    return EXIT_CODES[document.status]


if __name__ == "__main__":
    sys.exit(main())
