"""A function that uses resources on request, for the emulator's resource-model tests.

The action comes from the gateway's query string or the Invoke payload (``{"action": ...}``):

- ``allocate`` (``mb``, default 200): allocates and touches ``mb`` MiB, then returns.
- ``spin`` (``loops``, default 2,000,000): a fixed amount of CPU work; returns its CPU time.
- ``counter``: the value of a counter that a background thread, started at import, increments
  every millisecond (it stands still while the environment is frozen).
- ``tmp`` (``mb``, default 0; ``hold_s``): leaves a marker file in the temporary directory,
  waits ``hold_s`` (so that concurrent requests get environments of their own), writes ``mb``
  MiB there and returns how much it wrote, the errno that stopped it (28, ENOSPC, past its
  size), and the files it sees (another environment's marker must not be among them).
- anything else: the process id, TMPDIR and the temporary directory.
"""

import json
import os
import tempfile
import threading
import time

MIB = 1 << 20
COUNT = [0]


def _count() -> None:
    while True:
        COUNT[0] += 1
        time.sleep(0.001)


threading.Thread(target=_count, daemon=True).start()


def _write(mb: int) -> tuple[int, int | None]:
    written, block = 0, b"x" * MIB
    try:
        with tempfile.NamedTemporaryFile(prefix="fill-", delete=False) as sink:
            for _ in range(mb):
                sink.write(block)
                sink.flush()
                written += 1
    except OSError as exc:
        return written, exc.errno
    return written, None


def handler(event, context):
    params = (event or {}).get("queryStringParameters") or event or {}
    action = params.get("action", "")
    result: dict = {"pid": os.getpid(), "action": action}
    if action == "allocate":
        data = b"x" * (int(params.get("mb", 200)) * MIB)  # bytes * n writes every page
        result["allocated_mb"] = len(data) // MIB
    elif action == "spin":
        cpu, total = time.process_time_ns(), 0
        for i in range(int(params.get("loops", 2_000_000))):
            total += i
        result["cpu_ms"] = (time.process_time_ns() - cpu) / 1e6
    elif action == "counter":
        result["count"] = COUNT[0]
    elif action == "tmp":
        directory = tempfile.gettempdir()
        marker = os.path.join(directory, f"marker-{os.getpid()}")
        open(marker, "w").close()
        time.sleep(float(params.get("hold_s", 0)))
        result["written_mb"], result["errno"] = _write(int(params.get("mb", 0)))
        result["files"] = sorted(os.listdir(directory))
        result["tmpdir"] = directory
    else:
        result["TMPDIR"] = os.environ.get("TMPDIR")
        result["tmpdir"] = tempfile.gettempdir()
    return {"statusCode": 200, "body": json.dumps(result)}
