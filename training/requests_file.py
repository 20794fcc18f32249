"""``requests.jsonl``: requests drawn from whole sample rows, each with its expected answer.

Whole rows, not values drawn feature by feature, so one-hot groups and correlations stay as the
sample has them. ``expected`` is the ``prediction`` the handler must answer, computed here by the
user's original object as loaded from their file, before any re-serialization: verifying
against it checks the whole path (input mapping, feature order, serialization) at once.

A row goes as a GET query string (numbers written so they read back exactly: ``str(int)`` for
integral values, ``repr(float)`` otherwise) unless it has a missing value or a string that a
query cannot carry unambiguously (empty, or not printable): then as a POST with a JSON body,
``null`` for missing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from training.schema import outputs, prediction_value

FILE_NAME = "requests.jsonl"
DEFAULT_COUNT = 1_000
JSON_HEADERS = {"content-type": "application/json"}


def number_text(value: float) -> str:
    """A float as query text that parses back to the same float."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fits_query(value: object) -> bool:
    return not _missing(value) and (not isinstance(value, str) or (value != "" and value.isprintable()))


def request_line(row: dict[str, object], expected: object) -> dict:
    """One requests.jsonl object for a row (feature -> float or str, NaN for missing)."""
    if all(_fits_query(value) for value in row.values()):
        query = {
            name: value if isinstance(value, str) else number_text(float(value))  # type: ignore[arg-type]
            for name, value in row.items()
        }
        return {"method": "GET", "query": query, "expected": expected}
    body = {name: None if _missing(value) else value for name, value in row.items()}
    return {"method": "POST", "headers": dict(JSON_HEADERS), "body": body, "expected": expected}


def draw_rows(frame: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    """Up to ``count`` whole rows, drawn without replacement (seeded)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(frame), size=min(count, len(frame)), replace=False)
    return frame.iloc[chosen]


def build(estimator: object, task: dict, rows: pd.DataFrame, model_input: object) -> list[dict]:
    """The request lines for ``rows`` (typed, model order); ``model_input`` is what the estimator
    is called with for those rows (the frame, or its array for a model fitted without names)."""
    answers = outputs(estimator, task, model_input)
    lines = []
    for (_, row), answer in zip(rows.iterrows(), answers, strict=True):
        values = {str(name): _plain(value) for name, value in row.items()}
        lines.append(request_line(values, prediction_value(answer, task)))
    return lines


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def write(path: Path, lines: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as file:
        for line in lines:
            file.write(json.dumps(line, allow_nan=False, separators=(",", ":")) + "\n")
