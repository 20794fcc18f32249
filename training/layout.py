"""The models/ layout of one estimator: reference, derived artifacts, requests, memory, manifest.

Shared by ``--model`` (the user's file is the reference, byte for byte) and ``--data --label``
(the reference is the joblib file of the model fitted here). Everything is written into a
staging directory the caller swaps into place only once all of it exists
(:func:`training.export.staged`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import manifest_v2, requests_file
from training.memory import measure
from training.schema import inputs_of, is_text, outputs
from training.variants import Checked, diff, reload_artifact, stated_tolerance, write_variants

DEFAULT_SEED = 0


@dataclass(frozen=True)
class Reference:
    name: str  # file name in models/
    format: str  # joblib, pickle or skops
    trusted: tuple[str, ...] = ()  # skops types to trust (scikit-learn's and numpy's only)


@dataclass(frozen=True)
class RequestPlan:
    count: int = requests_file.DEFAULT_COUNT
    seed: int = DEFAULT_SEED


def _reference_entry(staging: Path, reference: Reference, checked: Checked) -> dict:
    path = staging / reference.name
    reloaded = reload_artifact(path, reference.format, checked, list(reference.trusted))
    measured = diff(outputs(reloaded, checked.task, checked.model_input), checked.reference)
    extra: dict = {"max_abs_diff": measured}
    if reference.format == "skops":
        extra["trusted"] = list(reference.trusted)
    tolerance = stated_tolerance(measured, checked.scale, "exact")
    return manifest_v2.artifact_entry(path, reference.format, "reference", tolerance, **extra)


def _first_row(checked: Checked, row_index: int) -> dict:
    row = checked.frame.iloc[row_index]
    types = ["string" if is_text(checked.frame[name]) else "number" for name in checked.frame.columns]
    values = [None if _is_missing(value) else _plain(value) for value in row.tolist()]
    return {
        "columns": [str(name) for name in checked.frame.columns],
        "row": values,
        "types": types,
        "named": checked.named,
        "proba": checked.task["kind"] != "regression",
    }


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def write_layout(
    staging: Path,
    checked: Checked,
    reference: Reference,
    *,
    plan: RequestPlan,
    code_dir: Path | None,
    fields: dict,
) -> dict:
    """Write the derived artifacts, ``requests.jsonl`` and the manifest beside ``reference``
    (already in ``staging``); returns the manifest. ``fields``: the manifest's model-specific
    fields (``versions``, ``saved_with``, ``model_class``, ``source``, training's own)."""
    shipped_code = None
    if code_dir is not None:
        shipped_code = staging / code_dir.name
        shutil.copytree(code_dir, shipped_code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    artifacts = {reference.name: _reference_entry(staging, reference, checked)}
    variants = write_variants(checked, staging, "model")
    artifacts.update(variants.artifacts)
    rows = requests_file.draw_rows(checked.frame, plan.count, plan.seed)
    model_input = checked.model_input_for(rows)
    lines = requests_file.build(checked.estimator, checked.task, rows, model_input)
    requests_file.write(staging / requests_file.FILE_NAME, lines)
    first = _first_row(checked, checked.frame.index.get_loc(rows.index[0]))
    memory = measure(staging / reference.name, reference.format, first, shipped_code, list(reference.trusted))
    manifest = manifest_v2.build(
        features=[str(name) for name in checked.frame.columns],
        inputs=inputs_of(checked.estimator, checked.frame),
        task=checked.task,
        artifacts=artifacts,
        unavailable=variants.unavailable,
        memory=memory.to_dict(),
        code_dir=None if code_dir is None else code_dir.name,
        requests=requests_file.FILE_NAME,
        **fields,
    )
    manifest_v2.write(staging / manifest_v2.FILE_NAME, manifest)
    return manifest
