"""A model's input schema and task, read from the fitted estimator and the sample it accepted.

- Task: a classifier answers ``predict_proba`` (binary: the probability of ``classes_[1]``,
  scikit-learn's positive class; multiclass: every class's probability by label); a regressor
  answers ``predict`` (one value). Anything else is refused.
- Inputs, one per feature in model order: ``number``, or ``string`` when the sample's column is
  text and the model predicted on it (it encodes it); ``nullable`` when the sample has missing
  values in the column and the model predicted on them (it imputes); ``categories`` for a text
  column that a ``OneHotEncoder``/``OrdinalEncoder`` encodes: the encoder's categories when it
  refuses unknown ones (``handle_unknown='error'``), else null (any string).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.load import ModelFileError

MIN_MAX_CHARS = 64


class TaskError(ModelFileError):
    """The estimator's task is not one the handler serves."""


def is_text(column: pd.Series) -> bool:
    """A text column: anything but numbers (object, or pandas' own string dtype)."""
    return column.dtype.kind not in "biuf"


def text_columns(frame: pd.DataFrame) -> list[str]:
    return [str(name) for name in frame.columns if is_text(frame[name])]


def json_value(value: object) -> object:
    """A class label as JSON: numpy scalars become Python's."""
    return value.item() if isinstance(value, np.generic) else value


def task_of(estimator: object) -> dict:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        if not hasattr(estimator, "predict_proba"):
            raise TaskError(
                f"{type(estimator).__name__} has no predict_proba: the handler answers class probabilities"
            )
        classes = [json_value(value) for value in estimator.classes_]
        if len(classes) == 2:
            return {"kind": "binary", "classes": classes, "positive_class": classes[1]}
        return {"kind": "multiclass", "classes": classes, "positive_class": None}
    if is_regressor(estimator):
        return {"kind": "regression", "classes": None, "positive_class": None}
    raise TaskError(f"{type(estimator).__name__} is neither a classifier nor a regressor")


def outputs(estimator: object, task: dict, x: object) -> np.ndarray:
    """The model's answers as a 2-D float array: one column (binary, regression) or one per class."""
    if task["kind"] == "regression":
        values = np.asarray(estimator.predict(x), dtype=np.float64)
        if values.ndim != 1:
            raise TaskError(f"the regressor answers {values.shape[1:]} values per row; one is supported")
        return values.reshape(-1, 1)
    probabilities = np.asarray(estimator.predict_proba(x), dtype=np.float64)
    return probabilities[:, 1:2] if task["kind"] == "binary" else probabilities


def prediction_value(row: np.ndarray, task: dict) -> object:
    """One row of :func:`outputs` as the handler's ``prediction`` value."""
    if task["kind"] == "multiclass":
        return {str(label): float(p) for label, p in zip(task["classes"], row, strict=True)}
    return float(row[0])


def _resolve_columns(spec: object, features: list[str]) -> list[str] | None:
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, int | np.integer):
        return [features[int(spec)]]
    if isinstance(spec, slice):
        return features[spec]
    try:
        items = list(spec)  # type: ignore[call-overload]
    except TypeError:
        return None
    if items and all(isinstance(item, bool | np.bool_) for item in items):
        return [name for name, keep in zip(features, items, strict=False) if keep]
    if all(isinstance(item, int | np.integer) for item in items):
        return [features[int(item)] for item in items]
    if all(isinstance(item, str) for item in items):
        return items
    return None


def _encoder_in(transformer: object) -> object | None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if isinstance(transformer, OneHotEncoder | OrdinalEncoder):
        return transformer
    if isinstance(transformer, Pipeline):
        for _, step in transformer.steps:
            found = _encoder_in(step)
            if found is not None:
                return found
    return None


def _accepts_unknown(encoder: object) -> bool:
    return getattr(encoder, "handle_unknown", "error") != "error"


def _categories_from(encoder: object, columns: list[str], found: dict[str, list | None]) -> None:
    categories = getattr(encoder, "categories_", None)
    if categories is None or len(categories) != len(columns):
        return
    for name, values in zip(columns, categories, strict=True):
        if _accepts_unknown(encoder):
            found[name] = None
        else:
            found[name] = sorted(str(value) for value in values if isinstance(value, str))


def encoded_categories(estimator: object, features: list[str]) -> dict[str, list | None]:
    """Category lists by feature for the encoders found (ColumnTransformer or a leading encoder)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    found: dict[str, list | None] = {}
    steps = estimator.steps if isinstance(estimator, Pipeline) else [("model", estimator)]
    for _, step in steps:
        if isinstance(step, ColumnTransformer):
            for _, transformer, spec in getattr(step, "transformers_", []):
                encoder = _encoder_in(transformer)
                columns = _resolve_columns(spec, features)
                if encoder is not None and columns is not None:
                    _categories_from(encoder, columns, found)
            break
        encoder = _encoder_in(step)
        if encoder is not None:
            _categories_from(encoder, features, found)
            break
    return found


def inputs_of(estimator: object, frame: pd.DataFrame) -> list[dict]:
    """The input schema of the features in ``frame`` (model order), per the module's rules."""
    features = [str(column) for column in frame.columns]
    categories = encoded_categories(estimator, features)
    schema = []
    for name in features:
        column = frame[name]
        entry: dict = {"name": name}
        if is_text(column):
            longest = max((len(str(value)) for value in column.dropna()), default=0)
            listed = categories.get(name)
            longest = max([longest, *(len(value) for value in listed or [])])
            entry.update(type="string", nullable=bool(column.isna().any()))
            entry.update(max_chars=max(MIN_MAX_CHARS, longest), categories=listed)
        else:
            entry.update(type="number", nullable=bool(column.isna().any()))
        schema.append(entry)
    return schema
