"""Fit the tutorial's model and measure it on held-out rows.

The served model is fitted on every row, as the tutorial does, so that its published
prediction is reproduced. Held-out accuracy and ROC AUC come from a second fit on a
stratified 80 % split, scored on the remaining 20 %: they describe the method, not a
model that was trained on the test rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from training.data import FEATURES, LABEL, Dataset
from training.export import write_models
from training.layout import RequestPlan

HOLDOUT_FRACTION = 0.2
SOLVERS = ("liblinear", "lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")


@dataclass(frozen=True)
class TrainConfig:
    out_dir: Path
    solver: str = "liblinear"
    seed: int = 0
    plan: RequestPlan = field(default_factory=RequestPlan)


def fit(dataset: Dataset, solver: str) -> LogisticRegression:
    features = dataset.frame[list(FEATURES)]
    return LogisticRegression(solver=solver).fit(features, dataset.frame[LABEL])


def holdout_metrics(dataset: Dataset, solver: str, seed: int) -> dict[str, float]:
    features = dataset.frame[list(FEATURES)]
    labels = dataset.frame[LABEL]
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=HOLDOUT_FRACTION, random_state=seed, stratify=labels
    )
    model = LogisticRegression(solver=solver).fit(x_train, y_train)
    probability = model.predict_proba(x_test)[:, 1]
    return {
        "holdout_fraction": HOLDOUT_FRACTION,
        "holdout_rows": len(x_test),
        "holdout_accuracy": float(accuracy_score(y_test, model.predict(x_test))),
        "holdout_roc_auc": float(roc_auc_score(y_test, probability)),
    }


def train(dataset: Dataset, config: TrainConfig) -> dict:
    """Fit, score and write every artifact; returns the manifest."""
    model = fit(dataset, config.solver)
    fields = {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {
            "estimator": "LogisticRegression",
            "solver": config.solver,
            "seed": config.seed,
            "coef": [float(value) for value in model.coef_[0]],
            "intercept": float(model.intercept_[0]),
        },
        "data": {
            "source": dataset.source,
            "sha256": dataset.sha256,
            "rows": dataset.rows,
            "feature_rates": {name: float(dataset.frame[name].mean()) for name in FEATURES},
        },
        "metrics": holdout_metrics(dataset, config.solver, config.seed),
    }
    return write_models(model, config.out_dir, fields, dataset.frame, config.plan)
