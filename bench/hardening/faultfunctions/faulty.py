"""Functions that misbehave on purpose, for the emulator's fault tests and ``bench.hardening.faults``.
Chosen by the event's query parameter ``fault`` (default ``DEFAULT_FAULT``); ``INIT_SLEEP_S`` delays init."""

import json
import os
import signal
import time

time.sleep(float(os.environ.get("INIT_SLEEP_S", "0")))


def handler(event, context):
    query = (event or {}).get("queryStringParameters") or {}
    fault = query.get("fault", os.environ.get("DEFAULT_FAULT", ""))
    if fault == "raise":
        raise RuntimeError("boom")
    if fault == "exit":
        os._exit(3)
    if fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "sleep":
        time.sleep(float(event["queryStringParameters"].get("seconds", "1")))
    if fault == "malformed":
        return {"statusCode": "teapot", "body": {"not": "a string"}}
    if fault == "huge":
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    if fault == "print":
        print("hello from the function")
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid(), "fault": fault})}
