"""``python -m training --data CSV --label COL``: the tutorial's kind of model on any numeric table.

A ``LogisticRegression`` (same solver option as the tutorial's) fitted on every numeric column
but the label, on every row, as the tutorial fits its model; held-out accuracy (and ROC AUC,
one-vs-rest macro for more than two classes) from a second fit on a stratified 80 % split. It
is written with a user model's layout: ``reference.joblib`` (the fitted model, the reference
variant), ``model.*``, a v2 manifest and ``requests.jsonl`` drawn from the table's rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from training.data import DataError, csv_frame, read_bytes
from training.export import library_versions, staged
from training.layout import Reference, RequestPlan, write_layout
from training.schema import outputs, task_of
from training.train import HOLDOUT_FRACTION
from training.variants import Checked

REFERENCE = Reference("reference.joblib", "joblib")


@dataclass(frozen=True)
class TabularConfig:
    data: str
    label: str
    out_dir: Path
    solver: str = "liblinear"
    seed: int = 0
    plan: RequestPlan = field(default_factory=RequestPlan)


def read_table(source: str, label: str) -> tuple[pd.DataFrame, pd.Series, str]:
    """Features (float64, every column but the label) and labels; :class:`DataError` naming
    the problem (no label column, text or missing values, a single class)."""
    raw = read_bytes(source)
    frame = csv_frame(raw, source)
    if label not in frame.columns:
        raise DataError(f"{source} has no label column {label!r} (--label)")
    features = frame.drop(columns=[label])
    if features.shape[1] == 0:
        raise DataError(f"{source} has no feature column besides the label {label!r}")
    text = [str(name) for name in features.columns if features[name].dtype.kind not in "biuf"]
    if text:
        raise DataError(f"{source}: column(s) {', '.join(text)} are not numeric (--label takes numbers only)")
    missing = [str(name) for name in features.columns if features[name].isna().any()]
    if missing or frame[label].isna().any():
        raise DataError(f"{source}: missing values in {', '.join(missing or [label])}")
    labels = frame[label]
    if labels.nunique() < 2:
        raise DataError(f"{source}: the label {label!r} has a single class; a classifier needs two or more")
    return features.astype(np.float64), labels, hashlib.sha256(raw).hexdigest()


def holdout_metrics(features: pd.DataFrame, labels: pd.Series, solver: str, seed: int) -> dict:
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            features, labels, test_size=HOLDOUT_FRACTION, random_state=seed, stratify=labels
        )
    except ValueError as exc:  # a class too small to stratify
        return {"holdout_fraction": HOLDOUT_FRACTION, "not_measured": str(exc)}
    model = LogisticRegression(solver=solver).fit(x_train, y_train)
    probabilities = model.predict_proba(x_test)
    if len(model.classes_) == 2:
        auc = roc_auc_score(y_test, probabilities[:, 1])
    else:
        auc = roc_auc_score(y_test, probabilities, multi_class="ovr", labels=model.classes_)
    return {
        "holdout_fraction": HOLDOUT_FRACTION,
        "holdout_rows": len(x_test),
        "holdout_accuracy": float(accuracy_score(y_test, model.predict(x_test))),
        "holdout_roc_auc": float(auc),
    }


def build(config: TabularConfig) -> dict:
    """Fit, score and write the layout; returns the manifest."""
    features, labels, digest = read_table(config.data, config.label)
    if config.solver == "liblinear" and labels.nunique() > 2:
        raise DataError(
            f"{config.data}: the label {config.label!r} has {labels.nunique()} classes; liblinear fits "
            "two: pass --solver lbfgs (or another multinomial solver)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning is the data's, reported by the metrics
        model = LogisticRegression(solver=config.solver).fit(features, labels)
        metrics = holdout_metrics(features, labels, config.solver, config.seed)
    task = task_of(model)
    checked = Checked(model, features, True, task, outputs(model, task, features))
    fields = {
        "versions": library_versions(),
        "saved_with": {"scikit-learn": sklearn.__version__},
        "model_class": "sklearn.linear_model.LogisticRegression",
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {"estimator": "LogisticRegression", "solver": config.solver, "seed": config.seed},
        "data": {"source": config.data, "sha256": digest, "rows": len(features), "label": config.label},
        "metrics": metrics,
    }
    with staged(config.out_dir) as staging:
        joblib.dump(model, staging / REFERENCE.name)
        return write_layout(staging, checked, REFERENCE, plan=config.plan, code_dir=None, fields=fields)
