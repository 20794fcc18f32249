"""The user's sample of model inputs: read it, check it against the model, type its columns.

The model's own record of its features decides: ``feature_names_in_`` (names and order must
match; a shuffled sample is refused, naming the columns out of place, since a silent reorder
would hide exactly the bug the requests file is there to catch), else ``n_features_in_`` (the
count must match; the sample's header then names the features). Numbers are float64, as the
handler parses them; a column pandas reads as text (object dtype) stays text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.data import csv_frame
from training.load import ModelFileError


class SampleError(ModelFileError):
    """The sample cannot be used with this model; the message names the columns."""


@dataclass
class Sample:
    frame: pd.DataFrame  # feature columns in model order; numbers float64, strings object
    source: str
    sha256: str
    named_model: bool  # the model has feature_names_in_: predict on the frame, else on an array

    @property
    def features(self) -> list[str]:
        return [str(column) for column in self.frame.columns]


def as_model_input(frame: pd.DataFrame, named: bool) -> pd.DataFrame | np.ndarray:
    """What a model is called with: the frame itself when it was fitted with feature names,
    else its values (a model fitted on an array warns when given names)."""
    if named:
        return frame
    if all(kind.kind == "f" for kind in frame.dtypes):
        return frame.to_numpy(dtype=np.float64)
    return frame.to_numpy(dtype=object)


def read_csv(path: Path, label: str | None) -> tuple[pd.DataFrame, str]:
    """The CSV's columns (the label dropped) and its sha256."""
    import hashlib

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SampleError(f"cannot read {path}: {exc.strerror or exc}") from exc
    frame = csv_frame(raw, str(path), SampleError)
    if label is not None:
        if label not in frame.columns:
            raise SampleError(f"{path} has no label column {label!r} (--label)")
        frame = frame.drop(columns=[label])
    return frame, hashlib.sha256(raw).hexdigest()


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    typed = {}
    for column in frame.columns:
        series = frame[column]
        if series.dtype.kind in "biuf":
            typed[column] = series.astype(np.float64)
        else:
            typed[column] = series.astype(object)  # missing stays NaN, as pandas read it
    return pd.DataFrame(typed, index=frame.index)


def _out_of_place(expected: list[str], found: list[str]) -> str:
    moved = [
        f"{name} (column {found.index(name) + 1}, the model's feature {position + 1})"
        for position, name in enumerate(expected)
        if found[position] != name
    ]
    return ", ".join(moved)


def check_columns(frame: pd.DataFrame, estimator: object, source: str) -> pd.DataFrame:
    """``frame`` with exactly the model's features in model order, or :class:`SampleError`."""
    found = [str(column) for column in frame.columns]
    if len(set(found)) != len(found):
        twice = sorted({name for name in found if found.count(name) > 1})
        raise SampleError(f"{source}: column(s) named more than once: {', '.join(twice)}")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        expected = [str(name) for name in names]
        missing = [name for name in expected if name not in found]
        extra = [name for name in found if name not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing the model's feature(s) {', '.join(missing)}")
            if extra:
                parts.append(f"has column(s) the model does not take: {', '.join(extra)}")
            raise SampleError(f"{source}: {'; '.join(parts)} (--label names a label column)")
        if found != expected:
            raise SampleError(
                f"{source}: columns out of the model's order: {_out_of_place(expected, found)}; "
                "write them in the model's order (feature_names_in_)"
            )
        return frame
    count = getattr(estimator, "n_features_in_", None)
    if count is not None and int(count) != len(found):
        raise SampleError(
            f"{source}: {len(found)} column(s), the model takes {int(count)} features "
            "(--label names a label column)"
        )
    return frame


def load_sample(path: Path, estimator: object, label: str | None) -> Sample:
    frame, digest = read_csv(path, label)
    frame = check_columns(frame, estimator, str(path))
    named = getattr(estimator, "feature_names_in_", None) is not None
    return Sample(frame=_typed(frame), source=str(path), sha256=digest, named_model=named)
