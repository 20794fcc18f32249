"""``python -m training --model FILE --sample CSV`` and ``--data CSV --label COL``, run as a user
runs them, on models built from data scikit-learn ships or generates: the layout, the manifest,
each artifact against the original object, and requests.jsonl's expectations."""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_iris, make_classification, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from tests.conftest import run_command, run_module
from training import linear_json
from training.schema import outputs, task_of

pytestmark = pytest.mark.slow


def _save(folder: Path, name: str, model: object, sample: pd.DataFrame) -> tuple[Path, Path]:
    joblib.dump(model, folder / f"{name}.joblib")
    sample.to_csv(folder / f"{name}.csv", index=False)
    return folder / f"{name}.joblib", folder / f"{name}.csv"


def _category_frame(rows: int = 240) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=rows),
            "color": rng.choice(["red", "blue", "green"], rows),
            "weight": rng.normal(size=rows),
        }
    )
    frame.loc[::13, "weight"] = np.nan
    return frame, ((frame["size"] + (frame["color"] == "red")) > 0.5).astype(int)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("user-models")
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    iris_x, iris_y = load_iris(return_X_y=True, as_frame=True)
    reg_x, reg_y = make_regression(240, 8, random_state=0)
    reg_frame = pd.DataFrame(reg_x, columns=[f"x{i}" for i in range(8)])
    cat_x, cat_y = _category_frame()
    plain_x, plain_y = make_classification(240, 6, random_state=0)
    return {
        "forest": _save(
            folder,
            "forest",
            RandomForestClassifier(n_estimators=25, random_state=0).fit(x, y),
            x.assign(target=y).iloc[:150],  # a label column, named with --label
        ),
        "linear": _save(
            folder,
            "linear",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(iris_x, iris_y),
            iris_x,
        ),
        "boosted": _save(
            folder,
            "boosted",
            GradientBoostingRegressor(n_estimators=40, random_state=0).fit(reg_frame, reg_y),
            reg_frame,
        ),
        "category": _save(
            folder,
            "category",
            make_pipeline(
                make_column_transformer((OneHotEncoder(), ["color"]), (SimpleImputer(), ["size", "weight"])),
                LogisticRegression(),
            ).fit(cat_x, cat_y),
            cat_x,
        ),
        "plain": _save(
            folder,
            "plain",
            LogisticRegression().fit(plain_x, plain_y),  # fitted on an array: no feature names
            pd.DataFrame(plain_x, columns=[f"f{i}" for i in range(6)]),
        ),
    }


def _train(model: Path, sample: Path, out: Path, *extra: str):
    return run_module("training", "--model", str(model), "--sample", str(sample), "--out", str(out), *extra)


def _typed_row(line: dict, inputs: list[dict]) -> dict:
    values = line["query"] if line["method"] == "GET" else line["body"]
    row = {}
    for spec in inputs:
        value = values[spec["name"]]
        if value is None or value == "":
            row[spec["name"]] = math.nan
        else:
            row[spec["name"]] = float(value) if spec["type"] == "number" else value
    return row


def _check_layout_and_expectations(out: Path, model_file: Path, sample: Path, named: bool) -> dict:
    """Every artifact's hash; the reference byte for byte; each request's expectation recomputed
    by the original object from the request itself (so a feature-order slip fails)."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema_version"] == 2
    reference = [name for name, entry in manifest["artifacts"].items() if entry["role"] == "reference"]
    assert reference == ["reference.joblib"]
    assert (out / "reference.joblib").read_bytes() == model_file.read_bytes()
    assert manifest["source"]["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    for name, entry in manifest["artifacts"].items():
        data = (out / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        assert entry["max_abs_diff"] <= entry["tolerance"]
    assert [spec["name"] for spec in manifest["inputs"]] == manifest["features"]
    assert manifest["memory"]["memory_size_mb"] % 64 == 0 and manifest["memory"]["memory_size_mb"] >= 128
    assert manifest["memory"]["memory_size_mb"] >= manifest["memory"]["peak_rss_mb"]
    original = joblib.load(model_file)
    lines = [json.loads(text) for text in (out / "requests.jsonl").read_text().splitlines()]
    assert 0 < len(lines) <= 1000
    rows = pd.DataFrame(
        [_typed_row(line, manifest["inputs"]) for line in lines], columns=manifest["features"]
    )
    for spec in manifest["inputs"]:
        if spec["type"] == "string":
            rows[spec["name"]] = rows[spec["name"]].astype(object)
    answers = outputs(original, manifest["task"], rows if named else rows.to_numpy())
    for line, answer in zip(lines, answers, strict=True):
        expected = line["expected"]
        values = list(expected.values()) if isinstance(expected, dict) else [expected]
        assert np.abs(np.asarray(values) - answer).max() <= 1e-12 * max(1.0, np.abs(answer).max())
    assert len(lines) == min(1000, len(pd.read_csv(sample)))  # whole rows, each drawn once
    return manifest


def test_a_random_forest_on_30_named_features(models, tmp_path: Path):
    model, sample = models["forest"]
    completed = _train(model, sample, tmp_path / "models", "--label", "target")
    assert completed.returncode == 0, completed.stderr
    first = completed.stdout.splitlines()[0]
    assert "loading it runs whatever it holds" in first
    assert hashlib.sha256(model.read_bytes()).hexdigest() in first
    manifest = _check_layout_and_expectations(tmp_path / "models", model, sample, named=True)
    assert len(manifest["features"]) == 30 and "target" not in manifest["features"]
    assert manifest["task"] == {"kind": "binary", "classes": [0, 1], "positive_class": 1}
    assert {"model.pkl", "model.pickle", "model.skops", "model.onnx"} <= set(manifest["artifacts"])
    assert manifest["model_class"] == "sklearn.ensemble.RandomForestClassifier"
    assert "json" in manifest["unavailable"]
    assert manifest["artifacts"]["model.skops"]["trusted"] == ["sklearn.tree._tree.Tree"]


def test_a_multiclass_scaled_logistic_pipeline_gets_the_pure_python_path(models, tmp_path: Path):
    model, sample = models["linear"]
    completed = _train(model, sample, tmp_path / "models")
    assert completed.returncode == 0, completed.stderr
    manifest = _check_layout_and_expectations(tmp_path / "models", model, sample, named=True)
    assert manifest["task"]["kind"] == "multiclass" and manifest["task"]["classes"] == [0, 1, 2]
    document = json.loads((tmp_path / "models" / "model.json").read_text())
    assert document["kind"] == "linear" and document["link"] == "softmax"
    frame = pd.read_csv(sample)
    original = joblib.load(model)
    reference = outputs(original, task_of(original), frame)
    measured = linear_json.max_abs_diff(document, frame.to_numpy(dtype=float), reference)
    assert measured <= manifest["artifacts"]["model.json"]["tolerance"]
    assert "model.onnx" in manifest["artifacts"]


def test_a_gradient_boosting_regressor_gets_onnx_within_its_stated_tolerance(models, tmp_path: Path):
    import onnxruntime

    model, sample = models["boosted"]
    completed = _train(model, sample, tmp_path / "models")
    assert completed.returncode == 0, completed.stderr
    manifest = _check_layout_and_expectations(tmp_path / "models", model, sample, named=True)
    assert manifest["task"] == {"kind": "regression", "classes": None, "positive_class": None}
    entry = manifest["artifacts"]["model.onnx"]
    session = onnxruntime.InferenceSession(
        str(tmp_path / "models" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    frame = pd.read_csv(sample)
    (answers,) = session.run([entry["output"]], {"X": frame.to_numpy(dtype=np.dtype(entry["dtype"]))})
    reference = joblib.load(model).predict(frame)
    assert np.abs(answers.ravel() - reference).max() <= entry["tolerance"]


def test_a_pipeline_with_a_text_category(models, tmp_path: Path):
    model, sample = models["category"]
    completed = _train(model, sample, tmp_path / "models")
    assert completed.returncode == 0, completed.stderr
    manifest = _check_layout_and_expectations(tmp_path / "models", model, sample, named=True)
    color = manifest["inputs"][1]
    assert color["type"] == "string" and color["categories"] == ["blue", "green", "red"]
    assert manifest["inputs"][2]["nullable"] is True  # the imputer answers a missing weight
    assert "text feature(s) color" in manifest["unavailable"]["onnx"]
    lines = (tmp_path / "models" / "requests.jsonl").read_text().splitlines()
    methods = {json.loads(line)["method"] for line in lines}
    assert methods == {"GET", "POST"}  # rows with a missing weight go as JSON bodies


def test_a_model_fitted_on_an_array_takes_the_samples_header(models, tmp_path: Path):
    model, sample = models["plain"]
    completed = _train(model, sample, tmp_path / "models")
    assert completed.returncode == 0, completed.stderr
    manifest = _check_layout_and_expectations(tmp_path / "models", model, sample, named=False)
    assert manifest["features"] == [f"f{i}" for i in range(6)]
    assert {"model.json", "model.onnx"} <= set(manifest["artifacts"])


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(models, tmp_path: Path):
    model, sample = models["linear"]
    out = tmp_path / "models"
    assert _train(model, sample, out, "--requests-count", "5").returncode == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    shuffled = tmp_path / "shuffled.csv"
    frame = pd.read_csv(sample)
    frame[list(reversed(frame.columns))].to_csv(shuffled, index=False)
    completed = _train(model, shuffled, out)
    assert completed.returncode == 2
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert "out of the model's order" in completed.stderr and "petal width (cm)" in completed.stderr
    not_model = tmp_path / "numbers.joblib"
    joblib.dump(np.arange(3), not_model)
    completed = _train(not_model, sample, out)
    assert completed.returncode == 2 and "not a scikit-learn estimator" in completed.stderr
    bad_values = tmp_path / "bad.csv"
    frame.assign(**{"sepal width (cm)": "wide"}).to_csv(bad_values, index=False)
    completed = _train(model, bad_values, out)
    assert completed.returncode == 2 and "the model refuses the sample" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # the good output stays
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "bad.csv",
        "models",
        "numbers.joblib",
        "shuffled.csv",
    ]


def test_the_users_own_module_is_refused_without_code_dir_and_shipped_with_it(tmp_path: Path):
    code = tmp_path / "user_code"
    code.mkdir()
    (code / "user_features.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def log_abs(x):
                return np.log1p(np.abs(x))
            """
        )
    )
    sys.path.insert(0, str(code))
    try:
        import user_features

        x, y = load_iris(return_X_y=True, as_frame=True)
        pipeline = make_pipeline(FunctionTransformer(user_features.log_abs), LogisticRegression(max_iter=500))
        model, sample = _save(tmp_path, "custom", pipeline.fit(x, y), x)
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("user_features", None)
    refused = _train(model, sample, tmp_path / "models")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: the model needs the module 'user_features' (not installed here): pass --code-dir DIR with it"
    )
    accepted = _train(model, sample, tmp_path / "models", "--code-dir", str(code))
    assert accepted.returncode == 0, accepted.stderr
    manifest = json.loads((tmp_path / "models" / "manifest.json").read_text())
    assert manifest["code_dir"] == "user_code"
    assert (tmp_path / "models" / "user_code" / "user_features.py").read_bytes() == (
        code / "user_features.py"
    ).read_bytes()
    assert "user_features.log_abs" in manifest["unavailable"]["skops"]
    # The code ships with the function: the handler finds it beside the model, the packager zips it.
    models = tmp_path / "models"
    line = json.loads((models / "requests.jsonl").read_text().splitlines()[0])
    probe = (
        "import json, sys; import handler.app as app; "
        "event = {'httpMethod': 'GET', 'queryStringParameters': json.loads(sys.argv[1])}; "
        "print(json.loads(app.lambda_handler(event, None)['body'])['prediction'])"
    )
    environment = {"MODEL_URI": str(models / "reference.joblib"), "MODEL_FORMAT": "joblib"}
    environment["INPUT_PATH"] = "pandas"
    served = run_command([sys.executable, "-c", probe, json.dumps(line["query"])], env=environment)
    assert served.returncode == 0, served.stderr[-2000:]
    assert json.loads(served.stdout.strip().replace("'", '"')) == pytest.approx(line["expected"])
    from handler.aws.package import _code_dir_entries

    assert [name for name, _path in _code_dir_entries(models)] == ["model/user_code/user_features.py"]


def test_data_with_a_label_trains_the_tutorials_kind_of_model_in_the_user_layout(tmp_path: Path):
    features, labels = make_classification(300, 5, n_informative=3, n_classes=3, random_state=0)
    table = pd.DataFrame(features, columns=[f"m{i}" for i in range(5)]).assign(kind=labels)
    table.to_csv(tmp_path / "table.csv", index=False)
    args = (
        "training",
        "--data",
        str(tmp_path / "table.csv"),
        "--label",
        "kind",
        "--out",
        str(tmp_path / "models"),
    )
    refused = run_module(*args)  # liblinear fits two classes
    assert refused.returncode == 2 and "--solver lbfgs" in refused.stderr
    completed = run_module(*args, "--solver", "lbfgs", "--requests-count", "50")
    assert completed.returncode == 0, completed.stderr
    out = tmp_path / "models"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["features"] == [f"m{i}" for i in range(5)]
    assert (
        manifest["task"]["classes"] == [0, 1, 2]
        and manifest["artifacts"]["reference.joblib"]["role"] == "reference"
    )
    assert {"model.pkl", "model.pickle", "model.skops", "model.onnx", "model.json"} <= set(
        manifest["artifacts"]
    )
    model = joblib.load(io.BytesIO((out / "reference.joblib").read_bytes()))
    assert isinstance(model, LogisticRegression) and model.solver == "lbfgs"
    assert len((out / "requests.jsonl").read_text().splitlines()) == 50
    text = table.assign(m0=table["m0"].astype(str) + "x")
    text.to_csv(tmp_path / "text.csv", index=False)
    bad = run_module("training", "--data", str(tmp_path / "text.csv"), "--label", "kind", "--out", str(out))
    assert bad.returncode == 2 and "m0 are not numeric" in bad.stderr
