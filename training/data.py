"""The training data: the tutorial's CSV (by path or URL), or a seeded synthetic stand-in.

The synthetic generator has the schema and first-order statistics of the tutorial's
``games-expand.csv`` (22,905 rows, ten 0/1 features with the published means, label rate
0.1325). Features are drawn independently; labels come from a logistic model whose
coefficients are the real data's liblinear fit, with the intercept solved so that the
expected label rate matches. It exists so that everything runs offline and without the
original file, which is not ours to redistribute.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from handler.features import FEATURE_MEANS, FEATURES

LABEL = "label"
COLUMNS: tuple[str, ...] = (*FEATURES, LABEL)

SYNTHETIC_ROWS = 22_905
LABEL_RATE = 0.1325
# liblinear fit on the real file (see ../shared/data/README.md), rounded.
TRUE_COEF = (-0.435, 0.332, 0.396, -0.413, 0.336, -0.176, -0.367, -0.488, 0.883, 1.707)
URL_SCHEMES = ("http://", "https://")


class DataError(ValueError):
    """The training data cannot be used; the message names the problem in one line."""


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame
    source: str
    sha256: str

    @property
    def rows(self) -> int:
        return len(self.frame)


def _solve_intercept(logits_without_intercept: np.ndarray, target_rate: float) -> float:
    """Bisection for the intercept b with mean(sigmoid(z + b)) == target_rate."""
    low, high = -20.0, 20.0
    for _ in range(100):
        mid = (low + high) / 2
        rate = float(np.mean(1.0 / (1.0 + np.exp(-(logits_without_intercept + mid)))))
        if rate < target_rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def synthetic(seed: int = 0, rows: int = SYNTHETIC_ROWS) -> Dataset:
    """A seeded data set with the tutorial's schema and statistics."""
    rng = np.random.default_rng(seed)
    features = (rng.random((rows, len(FEATURES))) < np.asarray(FEATURE_MEANS)).astype(np.int64)
    logits = features @ np.asarray(TRUE_COEF)
    intercept = _solve_intercept(logits, LABEL_RATE)
    probability = 1.0 / (1.0 + np.exp(-(logits + intercept)))
    labels = (rng.random(rows) < probability).astype(np.int64)
    frame = pd.DataFrame(features, columns=list(FEATURES))
    frame[LABEL] = labels
    digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
    return Dataset(frame=frame, source=f"synthetic(seed={seed}, rows={rows})", sha256=digest)


def read_bytes(path_or_url: str) -> bytes:
    if path_or_url.startswith(URL_SCHEMES):
        try:
            with urllib.request.urlopen(path_or_url, timeout=30) as response:
                return bytes(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DataError(f"cannot read {path_or_url}: {exc}") from exc
    path = Path(path_or_url)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path_or_url}: {exc.strerror or exc}") from exc


def csv_frame(raw: bytes, source: str, error: type[ValueError] = DataError) -> pd.DataFrame:
    """The CSV in ``raw`` as pandas reads it, with at least one row; ``error`` (one line naming
    ``source``) for an empty file, one pandas cannot parse, or a header without rows. The one
    reader of a user's CSV (the training data, ``--data --label``, a model's sample)."""
    if not raw.strip():
        raise error(f"{source} is empty")
    try:
        frame = pd.read_csv(io.BytesIO(raw))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{source} is not a readable CSV: {first_line}") from exc
    if frame.empty:
        raise error(f"{source} has no rows")
    return frame


def validate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check the schema (G1..G10 and label, every value 0 or 1); return those columns as int."""
    if frame.empty:
        raise DataError(f"{source} has no rows")
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(f"{source} is missing column(s) {', '.join(missing)}")
    selected = frame[list(COLUMNS)]
    for column in COLUMNS:
        numeric = pd.to_numeric(selected[column], errors="coerce")
        bad = ~numeric.isin([0, 1])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            value = selected[column].iloc[row]
            raise DataError(
                f"{source}: column {column} has {int(bad.sum())} value(s) other than 0/1 "
                f"(first at data row {row + 1}: {value!r})"
            )
    result = selected.apply(pd.to_numeric).astype(np.int64)
    if result[LABEL].nunique() < 2:
        raise DataError(f"{source}: the label has a single class; a classifier needs both 0 and 1")
    return result


def load_csv(path_or_url: str) -> Dataset:
    """Read and validate a CSV with header G1..G10,label from a path or an http(s) URL."""
    raw = read_bytes(path_or_url)
    frame = validate(csv_frame(raw, path_or_url), path_or_url)
    return Dataset(frame=frame, source=path_or_url, sha256=hashlib.sha256(raw).hexdigest())
