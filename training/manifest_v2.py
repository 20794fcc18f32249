"""The v2 ``manifest.json`` as a plain dict, field for field as the shared spec writes it.

Schema version 2 is a superset of 1: ``features``, ``artifacts`` (each entry keeps ``format``,
``sha256`` and ``bytes``), ``versions`` and training's own fields keep their meaning; new are
``inputs``, ``task``, each artifact's ``role`` and ``tolerance``, ``unavailable``,
``saved_with``, ``source``, ``memory``, ``requests``, ``model_class`` and ``code_dir``.
Artifact entries may carry more than the spec names (``max_abs_diff`` measured on the sample;
the ONNX graph's ``dtype``, ``inputs`` and ``output``; the types a skops file needs ``trusted``).

A deployed handler never parses a new manifest: the deployer pins ``MODEL_SHA256`` on every
function it creates, and the handler checks the artifact against that instead of reading the
manifest. A local reader that knows only version 1 refuses version 2 in one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

SCHEMA_VERSION = 2
FILE_NAME = "manifest.json"


def artifact_entry(path: Path, fmt: str, role: str, tolerance: float, **extra: object) -> dict:
    data = path.read_bytes()
    return {
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "role": role,
        "tolerance": tolerance,
        **extra,
    }


def build(
    *,
    features: list[str],
    inputs: list[dict],
    task: dict,
    artifacts: dict[str, dict],
    unavailable: dict[str, str],
    versions: dict[str, str],
    saved_with: dict[str, str],
    memory: dict | None,
    model_class: str,
    code_dir: str | None = None,
    source: dict | None = None,
    requests: str | None = "requests.jsonl",
    schema_version: int = SCHEMA_VERSION,
    **training_fields: object,
) -> dict:
    """The manifest's fields in the spec's order; ``source`` left out for a model trained here."""
    manifest: dict = {
        "schema_version": schema_version,
        "features": list(features),
        "inputs": inputs,
        "task": task,
        "artifacts": artifacts,
        "unavailable": unavailable,
        "versions": versions,
        "saved_with": saved_with,
    }
    if source is not None:
        manifest["source"] = source
    manifest.update(memory=memory, requests=requests, model_class=model_class, code_dir=code_dir)
    manifest.update(training_fields)
    return manifest


def write(path: Path, manifest: dict) -> None:
    path.write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")
