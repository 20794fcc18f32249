"""Warm ``logit-lean`` (1,769 MB) latency from one closed-loop client, alone and while four
environments of ``logit-skops`` cold-start at once, alternating rounds in one emulator run
(the storm; docs/benchmarks.md, "Warm first"). From the project root, after
``python -m training``:

    python docs/scripts/storm.py results/storm 6 300     # out dir, rounds, requests per round
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import boto3

from bench.latency import LatencyRecorder
from bench.process import running_emulator
from handler.features import TUTORIAL_QUERY


def main(out: Path, rounds: int, per_round: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    with running_emulator(Path("models"), out) as emulator:
        client = boto3.client(
            "lambda",
            endpoint_url=emulator.base_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        url = f"{emulator.base_url}/staging/logit-lean?{urlencode(TUTORIAL_QUERY)}"
        client.update_function_configuration(FunctionName="logit-lean", MemorySize=1769)
        for _ in range(200):
            urllib.request.urlopen(url).read()
        alone, beside = LatencyRecorder("us"), LatencyRecorder("us")
        env = client.get_function_configuration(FunctionName="logit-skops")["Environment"]["Variables"]
        cold_starts = 0

        def storm() -> None:
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda _: client.invoke(FunctionName="logit-skops"), range(4)))

        def one(recorder: LatencyRecorder) -> None:
            started = time.perf_counter_ns()
            urllib.request.urlopen(url).read()
            recorder.record_ns(time.perf_counter_ns() - started)

        for round_ in range(rounds):
            for _ in range(per_round):
                one(alone)
            variables = {**env, "ROUND": str(round_)}  # a new configuration: the next invokes are cold
            client.update_function_configuration(
                FunctionName="logit-skops", Environment={"Variables": variables}
            )
            thread = threading.Thread(target=storm)
            thread.start()
            time.sleep(0.05)
            while thread.is_alive():
                one(beside)
            thread.join()
            cold_starts += 4
    a, b = alone.summary(), beside.summary()
    return {
        "alone": {"n": a.count, "p50_us": a.p50, "p99_us": a.p99},
        "beside": {"n": b.count, "p50_us": b.p50, "p99_us": b.p99},
        "cold_starts": cold_starts,
        "ratio_p50": b.p50 / a.p50,
        "ratio_p99": b.p99 / a.p99,
    }


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: python docs/scripts/storm.py OUT_DIR ROUNDS REQUESTS_PER_ROUND", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
