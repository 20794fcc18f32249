"""Write the example user models of docs/training.md, each saved with joblib beside a sample CSV,
built from data scikit-learn ships or generates (no download):

    python docs/scripts/user_models.py DIR
    python -m training --model DIR/forest.joblib --sample DIR/forest.csv --label target --out DIR/m

forest (RandomForestClassifier, 30 named features; the sample has a label column), linear
(multiclass StandardScaler + LogisticRegression), boosted (GradientBoostingRegressor), category
(a text column one-hot encoded, a numeric one imputed), plain (LogisticRegression fitted on an
array; the sample's header names the columns).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_iris, make_classification, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    save(
        folder,
        "forest",
        RandomForestClassifier(n_estimators=50, random_state=0).fit(x, y),
        x.assign(target=y),
    )
    iris_x, iris_y = load_iris(return_X_y=True, as_frame=True)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(iris_x, iris_y)
    save(folder, "linear", linear, iris_x)
    reg_x, reg_y = make_regression(300, 8, random_state=0)
    reg_frame = pd.DataFrame(reg_x, columns=[f"x{i}" for i in range(8)])
    save(folder, "boosted", GradientBoostingRegressor(random_state=0).fit(reg_frame, reg_y), reg_frame)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=300),
            "color": rng.choice(["red", "blue", "green"], 300),
            "weight": rng.normal(size=300),
        }
    )
    frame.loc[::17, "weight"] = np.nan
    labels = ((frame["size"] + (frame["color"] == "red")) > 0.5).astype(int)
    encode = make_column_transformer((OneHotEncoder(), ["color"]), (SimpleImputer(), ["size", "weight"]))
    save(folder, "category", make_pipeline(encode, LogisticRegression()).fit(frame, labels), frame)
    plain_x, plain_y = make_classification(300, 6, random_state=0)
    plain = LogisticRegression().fit(plain_x, plain_y)
    save(folder, "plain", plain, pd.DataFrame(plain_x, columns=[f"f{i}" for i in range(6)]))


def save(folder: Path, name: str, model: object, sample: pd.DataFrame) -> None:
    joblib.dump(model, folder / f"{name}.joblib")
    sample.to_csv(folder / f"{name}.csv", index=False)
    print(f"{folder / name}.joblib  {folder / name}.csv")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("user-models"))
    main(parser.parse_args().folder)
