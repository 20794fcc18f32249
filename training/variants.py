"""Every derived artifact of a fitted estimator, each checked against the reference object.

For each format: write it, read it back as its handler would, answer the sample, and record the
largest |answer - reference| (``max_abs_diff``) and the ``tolerance`` a verifier should allow:
``max(10 × measured, floor × scale)`` with ``scale = max(1, max |reference answer|)`` and the
floor by kind of arithmetic: 1e-12 for the re-serialized objects (the same code on the same
numbers) and the pure-Python linear path (the folded scaler changes the order of operations),
1e-9 for a float64 ONNX graph (other kernels), 1e-5 for a float32 one (float32 carries ~7
significant digits). The bound is stated from what the sample showed; it is not a proof for
inputs the sample does not have. A format that does not apply goes to ``unavailable`` with why.
"""

from __future__ import annotations

import io
import math
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training import linear_json, onnx_export
from training.load import code_on_path, trusted_types
from training.manifest_v2 import artifact_entry
from training.sample import as_model_input
from training.schema import outputs, text_columns

FLOORS = {"exact": 1e-12, "json": 1e-12, "float64": 1e-9, "float32": 1e-5}
TOLERANCE_FACTOR = 10


@dataclass
class Checked:
    """What the sample showed, for one estimator: its inputs and its reference answers."""

    estimator: object
    frame: pd.DataFrame  # typed sample, model order
    named: bool  # fitted with feature names: called with a DataFrame, else with its array
    task: dict
    reference: np.ndarray  # outputs() on the sample, by the reference object
    code_dir: Path | None = None

    @property
    def model_input(self) -> pd.DataFrame | np.ndarray:
        return as_model_input(self.frame, self.named)

    def model_input_for(self, rows: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        return as_model_input(rows, self.named)

    @property
    def scale(self) -> float:
        return max(1.0, float(np.max(np.abs(self.reference)))) if self.reference.size else 1.0


@dataclass
class Variants:
    artifacts: dict[str, dict] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)


def stated_tolerance(measured: float, scale: float, kind: str) -> float:
    return max(TOLERANCE_FACTOR * measured, FLOORS[kind] * scale)


def diff(answers: np.ndarray, reference: np.ndarray) -> float:
    """max |answers - reference|; NaN where the reference is a number counts as infinite."""
    if answers.shape != reference.shape:
        return math.inf
    delta = np.abs(np.asarray(answers, dtype=np.float64) - reference)
    return math.inf if np.isnan(delta).any() else float(delta.max(initial=0.0))


def reload_artifact(path: Path, fmt: str, checked: Checked, trusted: list[str]) -> object:
    data = path.read_bytes()
    with code_on_path(checked.code_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "skops":
            import skops.io

            return skops.io.loads(data, trusted=trusted)
        if fmt == "pickle":
            return pickle.loads(data)
        import joblib

        return joblib.load(io.BytesIO(data))


def _record(variants: Variants, name: str, path: Path, fmt: str, checked: Checked, measured: float,
            kind: str, **extra: object) -> None:  # fmt: skip
    tolerance = stated_tolerance(measured, checked.scale, kind)
    variants.artifacts[name] = artifact_entry(path, fmt, "derived", tolerance, max_abs_diff=measured, **extra)


def _pickled(variants: Variants, staging: Path, prefix: str, checked: Checked) -> None:
    import joblib

    for fmt, name in (("joblib", f"{prefix}.pkl"), ("pickle", f"{prefix}.pickle")):
        path = staging / name
        if fmt == "joblib":
            joblib.dump(checked.estimator, path)
        else:
            path.write_bytes(pickle.dumps(checked.estimator, protocol=pickle.HIGHEST_PROTOCOL))
        answers = outputs(reload_artifact(path, fmt, checked, []), checked.task, checked.model_input)
        _record(variants, name, path, fmt, checked, diff(answers, checked.reference), "exact")


def _skops(variants: Variants, staging: Path, prefix: str, checked: Checked) -> None:
    import skops.io

    try:
        data = skops.io.dumps(checked.estimator)
    except Exception as exc:  # skops raises whatever the object's state raises
        variants.unavailable["skops"] = f"skops cannot save {type(checked.estimator).__name__}: {exc}"
        return
    untrusted = skops.io.get_untrusted_types(data=data)
    trusted = trusted_types(untrusted)
    if trusted is None:
        others = [name for name in untrusted if not name.startswith(("sklearn.", "numpy."))]
        variants.unavailable["skops"] = (
            f"loading it would need trusting types outside scikit-learn and numpy: {', '.join(others)}"
        )
        return
    path = staging / f"{prefix}.skops"
    path.write_bytes(data)
    answers = outputs(reload_artifact(path, "skops", checked, trusted), checked.task, checked.model_input)
    _record(variants, path.name, path, "skops", checked, diff(answers, checked.reference), "exact",
            trusted=trusted)  # fmt: skip


def _onnx(variants: Variants, staging: Path, prefix: str, checked: Checked) -> None:
    try:
        graph = onnx_export.convert(checked.estimator, checked.frame, checked.task)
    except onnx_export.NoOnnx as exc:
        variants.unavailable["onnx"] = str(exc)
        return
    path = staging / f"{prefix}.onnx"
    path.write_bytes(graph.data)
    measured = diff(graph.answers, checked.reference)
    _record(variants, path.name, path, "onnx", checked, measured, graph.dtype,
            dtype=graph.dtype, inputs=graph.inputs, output=graph.output)  # fmt: skip


def _json(variants: Variants, staging: Path, prefix: str, checked: Checked) -> None:
    import json

    if text_columns(checked.frame):
        variants.unavailable["json"] = "a text feature: the pure-Python linear path takes numbers only"
        return
    try:
        document = linear_json.linear_document(checked.estimator, list(checked.frame.columns), checked.task)
    except linear_json.NotLinear as exc:
        variants.unavailable["json"] = f"no pure-Python path: {exc}"
        return
    rows = checked.frame.to_numpy(dtype=np.float64)
    measured = linear_json.max_abs_diff(document, rows, checked.reference)
    if measured > linear_json.AGREEMENT * checked.scale:
        variants.unavailable["json"] = (
            f"the {document['link']} formula disagrees with the model by {measured:.3g} on the sample "
            "(it does not reproduce the model)"
        )
        return
    path = staging / f"{prefix}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    _record(variants, path.name, path, "json", checked, measured, "json")


def write_variants(checked: Checked, staging: Path, prefix: str = "model") -> Variants:
    """joblib, pickle, skops, ONNX and JSON artifacts of ``checked.estimator`` in ``staging``."""
    variants = Variants()
    _pickled(variants, staging, prefix, checked)
    _skops(variants, staging, prefix, checked)
    _onnx(variants, staging, prefix, checked)
    _json(variants, staging, prefix, checked)
    return variants
