"""Serialize a fitted LogisticRegression in every format the handlers load.

Each artifact is written to a temporary directory; the output directory is replaced only
once every artifact and the manifest exist, so a failed run leaves the previous models intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from handler.manifest import ArtifactEntry, Manifest
from handler.versions import package_versions
from training.data import FEATURES

MANIFEST = "manifest.json"
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


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def library_versions() -> dict[str, str]:
    """What wrote the artifacts: Python and the installed model libraries (``handler.versions``)."""
    return package_versions(VERSIONED_PACKAGES)


def write_models(model: LogisticRegression, out_dir: Path, manifest_fields: dict) -> dict:
    """Write every artifact and ``manifest.json`` to ``out_dir``, replacing it only on success."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        artifacts = {}
        for name, fmt in ARTIFACTS.items():
            if fmt == "onnx" and not onnx_available():
                continue
            path = staging / name
            WRITERS[name](model, path)
            artifacts[name] = {
                "format": fmt,
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
            }
        entries = {name: ArtifactEntry(**entry) for name, entry in artifacts.items()}
        typed = Manifest(list(FEATURES), entries, library_versions(), dict(manifest_fields))
        (staging / MANIFEST).write_text(typed.to_json())
        manifest = typed.to_dict()
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
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
