"""What a measurement ran against: the local emulator's resource model, or something else.

The emulator answers ``GET /_emulator/resource-model`` with the model that produced its
figures (cgroup v1/v2 with each environment's memory cap, CPU share and freezer, or the host's
whole CPU; the init CPU policy; whether environments are frozen). Measuring tools put it in
their results' ``metadata.resource_model``, so every figure says which model produced it. Any
other endpoint (AWS, a server of the user's) does not answer it: the record says so.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

PATH = "/_emulator/resource-model"
AWS = {"kind": "aws", "enforced": True, "reason": "AWS Lambda itself"}
TRUTH = {
    "kind": "truth-server",
    "enforced": False,
    "reason": "bench.truth.server: a known delay, no function",
}
IN_PROCESS = {
    "kind": "in-process",
    "enforced": False,
    "reason": "measured in a process of this machine, not in an execution environment: the host's CPU",
}


def resource_model(url: str | None, timeout_s: float = 5.0) -> dict:
    """The resource model behind ``url`` (any URL on the emulator's port), or why it is unknown."""
    if not url:
        return AWS
    parts = urllib.parse.urlsplit(url)
    probe = f"{parts.scheme}://{parts.netloc}{PATH}"
    try:
        with urllib.request.urlopen(probe, timeout=timeout_s) as response:
            model = json.loads(response.read())
    except (OSError, ValueError, urllib.error.HTTPError) as exc:
        return {"kind": "unknown", "enforced": None, "reason": f"{probe} did not answer ({exc})"}
    return model if isinstance(model, dict) else {"kind": "unknown", "enforced": None, "reason": str(model)}
