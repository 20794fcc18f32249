"""Serialize the tutorial's fitted LogisticRegression in every format the handlers load.

Beside the ``logit.*`` artifacts: each one's tolerance (read back as its handler reads it and
compared with the model on the training rows, :mod:`training.variants`' rule), the measured
memory size, ``requests.jsonl`` drawn from the training rows, and the manifest in the newest
version ``handler.manifest`` reads. Everything is written to a staging directory
(:func:`staged`, shared with the user-model layout); the output directory is replaced only once
every file exists, so a failed run leaves the previous models intact.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression

from handler.versions import package_versions
from training import linear_json, manifest_v2, onnx_export, requests_file
from training.data import FEATURES
from training.layout import RequestPlan
from training.memory import measure
from training.schema import outputs
from training.variants import Checked, diff, reload_artifact, stated_tolerance

MANIFEST = "manifest.json"
REFERENCE = "logit.pkl"  # the tutorial's reference variant
TUTORIAL_TASK = {"kind": "binary", "classes": [0, 1], "positive_class": 1}
# artifact file name -> MODEL_FORMAT that reads it
ARTIFACTS: dict[str, str] = {
    "logit.pkl": "joblib",
    "logit.pickle": "pickle",
    "logit.skops": "skops",
    "logit.json": "json",
    "logit.onnx": "onnx",
}
VERSIONED_PACKAGES = (
    "scikit-learn",
    "numpy",
    "pandas",
    "joblib",
    "skops",
    "onnxruntime",
    "skl2onnx",
)


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError:
        return False
    return True


def _write_joblib(model: LogisticRegression, path: Path) -> None:
    joblib.dump(model, path)


def _write_pickle(model: LogisticRegression, path: Path) -> None:
    path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def _write_skops(model: LogisticRegression, path: Path) -> None:
    import skops.io

    path.write_bytes(skops.io.dumps(model))


def _write_json(model: LogisticRegression, path: Path) -> None:
    document = {
        "features": list(FEATURES),
        "coef": [float(value) for value in model.coef_[0]],
        "intercept": float(model.intercept_[0]),
        "classes": [int(value) for value in model.classes_],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _write_onnx(model: LogisticRegression, path: Path) -> None:
    from skl2onnx import to_onnx

    # float64 graph: the handler must agree with sklearn to 1e-12.
    graph = to_onnx(
        model,
        np.zeros((1, len(FEATURES)), dtype=np.float64),
        options={id(model): {"zipmap": False}},
    )
    path.write_bytes(graph.SerializeToString())


WRITERS: dict[str, Callable[[LogisticRegression, Path], None]] = {
    "logit.pkl": _write_joblib,
    "logit.pickle": _write_pickle,
    "logit.skops": _write_skops,
    "logit.json": _write_json,
    "logit.onnx": _write_onnx,
}


def library_versions() -> dict[str, str]:
    """What wrote the artifacts: Python and the installed model libraries (``handler.versions``)."""
    return package_versions(VERSIONED_PACKAGES)


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A staging directory beside ``out_dir``, swapped into its place when the block completes;
    removed (and ``out_dir`` left as it was) when the block raises."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield staging
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def reader_schema_version() -> int:
    """The newest manifest version ``handler.manifest`` reads: the tutorial's manifest is written
    in it (2, with every field of the shared spec; 1 before the handler reads 2, its artifact
    entries then without ``role``/``tolerance`` and the other fields ignored by version 1 readers)."""
    from handler import manifest

    return min(manifest_v2.SCHEMA_VERSION, int(manifest.SCHEMA_VERSION))


def _measured_tolerances(model: LogisticRegression, frame: pd.DataFrame, staging: Path) -> dict[str, dict]:
    """Each artifact's entry: read back as its handler does, answered on the training rows."""
    task = TUTORIAL_TASK
    checked = Checked(model, frame, True, task, outputs(model, task, frame))
    entries = {}
    for name, fmt in ARTIFACTS.items():
        path = staging / name
        if not path.exists():
            continue
        kind = "exact"
        if fmt in ("joblib", "pickle", "skops"):
            answers = outputs(reload_artifact(path, fmt, checked, []), task, frame)
        elif fmt == "json":
            kind = "json"
            document = json.loads(path.read_text())
            linear = {"coef": [document["coef"]], "intercept": [document["intercept"]], "link": "logistic"}
            rows = frame.to_numpy(dtype=np.float64)
            answers = np.asarray([linear_json.evaluate(linear, [float(v) for v in row]) for row in rows])
        else:
            kind = "float64"
            _, answers = onnx_export.run_graph(path.read_bytes(), frame, "float64", task)
        measured = diff(answers, checked.reference)
        role = "reference" if name == REFERENCE else "derived"
        tolerance = stated_tolerance(measured, checked.scale, kind)
        # No max_abs_diff here: the tutorial's entries keep to the fields handler.manifest types.
        entries[name] = manifest_v2.artifact_entry(path, fmt, role, tolerance)
    return entries


def _for_reader(manifest: dict, version: int) -> dict:
    if version >= 2:
        return manifest
    v1 = dict(manifest, schema_version=1)
    v1["artifacts"] = {
        name: {key: entry[key] for key in ("format", "sha256", "bytes")}
        for name, entry in manifest["artifacts"].items()
    }
    return v1


def write_models(
    model: LogisticRegression, out_dir: Path, manifest_fields: dict, frame: pd.DataFrame, plan: RequestPlan
) -> dict:
    """Write every artifact, ``requests.jsonl`` and ``manifest.json`` to ``out_dir``, replacing
    it only on success. ``frame``: the training rows (G1..G10), for the requests and tolerances."""
    frame = frame[list(FEATURES)].astype(np.float64)
    with staged(out_dir) as staging:
        for name, fmt in ARTIFACTS.items():
            if fmt == "onnx" and not onnx_available():
                continue
            WRITERS[name](model, staging / name)
        artifacts = _measured_tolerances(model, frame, staging)
        rows = requests_file.draw_rows(frame, plan.count, plan.seed)
        lines = requests_file.build(model, TUTORIAL_TASK, rows, rows)
        requests_file.write(staging / requests_file.FILE_NAME, lines)
        first_row = {
            "columns": list(FEATURES),
            "row": rows.iloc[0].tolist(),
            "types": ["number"] * len(FEATURES),
            "named": True,
            "proba": True,
        }
        memory = measure(staging / REFERENCE, "joblib", first_row)
        unavailable = {} if onnx_available() else {"onnx": "skl2onnx/onnxruntime are not installed"}
        manifest = manifest_v2.build(
            features=list(FEATURES),
            inputs=[{"name": name, "type": "number", "nullable": False} for name in FEATURES],
            task=TUTORIAL_TASK,
            artifacts=artifacts,
            unavailable=unavailable,
            versions=library_versions(),
            saved_with={"scikit-learn": sklearn.__version__},
            memory=memory.to_dict(),
            model_class="sklearn.linear_model.LogisticRegression",
            **manifest_fields,
        )
        manifest = _for_reader(manifest, reader_schema_version())
        manifest_v2.write(staging / MANIFEST, manifest)
    return manifest


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``; an existing ``out_dir`` is moved aside, then removed."""
    os.chmod(staging, 0o755)
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    retired.rmdir()
    out_dir.rename(retired)
    try:
        staging.rename(out_dir)
    except OSError:
        retired.rename(out_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)
