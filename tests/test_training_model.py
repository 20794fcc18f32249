"""A user's model, the parts that run in this process: loading, the sample check, the input
schema, the pure-Python linear document, ONNX, request lines, the memory size rule."""

from __future__ import annotations

import math
import pickle
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.cluster import KMeans
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_iris, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import LinearSVC

from training import linear_json, onnx_export, requests_file
from training.load import ModelFileError, load_model, public_class_path
from training.memory import lambda_size
from training.sample import SampleError, check_columns
from training.schema import TaskError, inputs_of, outputs, task_of
from training.variants import stated_tolerance


def _iris() -> tuple[pd.DataFrame, pd.Series]:
    return load_iris(return_X_y=True, as_frame=True)


def test_memory_size_is_measured_peak_with_headroom_rounded_up_to_64_mb():
    assert lambda_size(10.0) == 128  # Lambda's minimum
    assert lambda_size(64.0) == 128  # 64 x 1.5 + 32 = 128
    assert lambda_size(64.1) == 192
    assert lambda_size(158.5) == 320  # 269.75 -> 320
    assert lambda_size(9_000.0) == 10_240  # Lambda's maximum
    assert all(lambda_size(mb) % 64 == 0 for mb in (1.0, 100.0, 333.3, 1_000.0))


def test_not_an_estimator_and_a_file_that_does_not_load_are_refused_in_one_line(tmp_path: Path):
    not_model = tmp_path / "dict.pkl"
    not_model.write_bytes(pickle.dumps({"coef": [1.0]}))
    with pytest.raises(ModelFileError, match=r"holds a builtins\.dict, not a scikit-learn estimator"):
        load_model(not_model)
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="does not load as a joblib or pickle file") as raised:
        load_model(junk)
    assert "\n" not in str(raised.value)
    with pytest.raises(ModelFileError, match="is empty"):
        (tmp_path / "empty.joblib").write_bytes(b"")
        load_model(tmp_path / "empty.joblib")


def test_the_format_is_found_by_loading_not_by_the_extension(tmp_path: Path):
    x, y = _iris()
    model = LogisticRegression(max_iter=500).fit(x, y)
    joblib.dump(model, tmp_path / "a.pickle")  # a joblib file named .pickle
    (tmp_path / "b.joblib").write_bytes(pickle.dumps(model))  # a plain pickle named .joblib
    assert load_model(tmp_path / "a.pickle").format == "joblib"
    assert load_model(tmp_path / "b.joblib").format == "pickle"
    assert load_model(tmp_path / "b.joblib").reference_name == "reference.pickle"


def test_an_older_scikit_learn_version_is_recorded_not_raised(tmp_path: Path):
    """The suite runs with warnings as errors: InconsistentVersionWarning must not escape."""
    x, y = _iris()
    data = pickle.dumps(LogisticRegression(max_iter=500).fit(x, y))
    version = sklearn.__version__.encode()
    assert data.count(version) == 1
    old = tmp_path / "old.pickle"
    old.write_bytes(data.replace(version, b"1.0.0"))
    loaded = load_model(old)
    assert loaded.saved_with == {"scikit-learn": "1.0.0"}
    assert loaded.version_warning is not None and "1.0.0" in loaded.version_warning
    assert "\n" not in loaded.version_warning
    current = tmp_path / "current.pickle"
    current.write_bytes(data)
    assert load_model(current).saved_with == {"scikit-learn": sklearn.__version__}
    assert load_model(current).version_warning is None


def _custom_module(tmp_path: Path, name: str) -> Path:
    code = tmp_path / "user_code"
    code.mkdir()
    (code / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from sklearn.base import BaseEstimator, TransformerMixin

            class Doubler(TransformerMixin, BaseEstimator):
                def fit(self, x, y=None):
                    return self

                def transform(self, x):
                    return np.asarray(x, dtype=float) * 2
            """
        )
    )
    return code


def test_a_pipeline_needing_the_users_module_is_refused_naming_it_unless_code_dir_has_it(tmp_path: Path):
    name = "user_transformers_load"
    code = _custom_module(tmp_path, name)
    sys.path.insert(0, str(code))
    try:
        module = __import__(name)
        x, y = _iris()
        joblib.dump(
            make_pipeline(module.Doubler(), LogisticRegression(max_iter=500)).fit(x, y), tmp_path / "m.joblib"
        )
    finally:
        sys.path.remove(str(code))
        sys.modules.pop(name, None)
    with pytest.raises(ModelFileError, match=f"needs the module '{name}'.*--code-dir"):
        load_model(tmp_path / "m.joblib")
    try:
        loaded = load_model(tmp_path / "m.joblib", code_dir=code)
        assert type(loaded.estimator.steps[0][1]).__module__ == name
        assert str(code) not in sys.path  # only while loading
    finally:
        sys.modules.pop(name, None)


def test_a_class_defined_in_the_saving_script_is_named(tmp_path: Path):
    """A class pickled from a script lives in ``__main__``: unpickling elsewhere cannot find it."""
    main = sys.modules["__main__"]
    scaler = type("MyScaler", (StandardScaler,), {"__module__": "__main__"})
    x, y = _iris()
    main.MyScaler = scaler
    try:
        joblib.dump(
            make_pipeline(scaler(), LogisticRegression(max_iter=500)).fit(x, y), tmp_path / "m.joblib"
        )
    finally:
        del main.MyScaler
    with pytest.raises(ModelFileError, match=r"'MyScaler' from module '__main__'.*module of its own"):
        load_model(tmp_path / "m.joblib")


def test_sample_columns_are_checked_against_feature_names_in_():
    x, y = _iris()
    model = LogisticRegression(max_iter=500).fit(x, y)
    shuffled = x[list(reversed(x.columns))]
    with pytest.raises(SampleError, match="out of the model's order") as raised:
        check_columns(shuffled, model, "s.csv")
    for name in x.columns:
        assert name in str(raised.value)
    with pytest.raises(SampleError, match=r"missing the model's feature\(s\) sepal length \(cm\)"):
        check_columns(x.drop(columns=["sepal length (cm)"]), model, "s.csv")
    with pytest.raises(SampleError, match=r"does not take: colour"):
        check_columns(x.assign(colour=1), model, "s.csv")
    assert check_columns(x, model, "s.csv") is x


def test_without_feature_names_the_count_is_checked_and_the_header_names_them():
    x, y = _iris()
    model = LogisticRegression(max_iter=500).fit(x.to_numpy(), y)
    assert not hasattr(model, "feature_names_in_")
    renamed = x.set_axis(["a", "b", "c", "d"], axis=1)
    assert list(check_columns(renamed, model, "s.csv").columns) == ["a", "b", "c", "d"]
    with pytest.raises(SampleError, match=r"3 column\(s\), the model takes 4 features"):
        check_columns(renamed.drop(columns=["d"]), model, "s.csv")


def _category_frame(rows: int = 200) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=rows),
            "color": rng.choice(["red", "blue", "green"], rows).astype(object),
            "shape": rng.choice(["round", "square"], rows).astype(object),
            "weight": rng.normal(size=rows),
        }
    )
    frame.loc[::11, "weight"] = np.nan
    labels = ((frame["size"] + (frame["color"] == "red")) > 0.5).astype(int)
    return frame, labels


def test_input_schema_types_nullable_and_categories():
    frame, labels = _category_frame()
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), ["color"]),
            (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["shape"]),
            (SimpleImputer(), ["size", "weight"]),
        ),
        LogisticRegression(),
    ).fit(frame, labels)
    schema = {entry["name"]: entry for entry in inputs_of(model, frame)}
    assert schema["size"] == {"name": "size", "type": "number", "nullable": False}
    assert schema["weight"] == {"name": "weight", "type": "number", "nullable": True}
    assert schema["color"]["type"] == "string" and schema["color"]["categories"] == ["blue", "green", "red"]
    assert schema["shape"]["categories"] is None  # unknown categories accepted
    assert schema["color"]["max_chars"] == 64 and not schema["color"]["nullable"]
    assert task_of(model) == {"kind": "binary", "classes": [0, 1], "positive_class": 1}


def test_the_linear_document_folds_the_scaler_and_matches_the_model():
    x, y = _iris()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    task = task_of(model)
    assert task == {"kind": "multiclass", "classes": [0, 1, 2], "positive_class": None}
    document = linear_json.linear_document(model, list(x.columns), task)
    assert document["link"] == "softmax" and len(document["coef"]) == 3
    reference = outputs(model, task, x)
    assert linear_json.max_abs_diff(document, x.to_numpy(), reference) < 1e-12
    binary = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y == 2)
    document = linear_json.linear_document(binary, list(x.columns), task_of(binary))
    assert document["link"] == "logistic" and document["classes"] == [False, True]
    assert linear_json.max_abs_diff(document, x.to_numpy(), outputs(binary, task_of(binary), x)) < 1e-12
    for regressor in (make_pipeline(StandardScaler(), Ridge()), LinearRegression()):
        regressor.fit(x.iloc[:, :3], x.iloc[:, 3])
        task = task_of(regressor)
        document = linear_json.linear_document(regressor, list(x.columns[:3]), task)
        assert document["link"] == "identity"
        diff = linear_json.max_abs_diff(
            document, x.iloc[:, :3].to_numpy(), outputs(regressor, task, x.iloc[:, :3])
        )
        assert diff < 1e-12


def test_only_a_softmax_or_logistic_model_has_a_linear_document():
    x, y = _iris()
    one_vs_rest = OneVsRestClassifier(LogisticRegression(max_iter=500)).fit(x, y)
    with pytest.raises(linear_json.NotLinear, match="OneVsRestClassifier is not a LogisticRegression"):
        linear_json.linear_document(one_vs_rest, list(x.columns), task_of(one_vs_rest))
    model = LogisticRegression(max_iter=500).fit(x, y)
    document = linear_json.linear_document(model, list(x.columns), task_of(model))
    document["link"] = "logistic"  # the wrong formula is caught by the agreement check
    document["coef"], document["intercept"] = document["coef"][:1], document["intercept"][:1]
    assert linear_json.max_abs_diff(document, x.to_numpy(), outputs(model, task_of(model), x)) > 1e-3
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    with pytest.raises(linear_json.NotLinear, match="not a LogisticRegression"):
        linear_json.linear_document(forest, list(x.columns), task_of(forest))


def test_onnx_converts_a_forest_in_float64_and_a_boosted_regressor_in_float32():
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    task = task_of(forest)
    graph = onnx_export.convert(forest, x.astype(np.float64), task)
    assert graph.output == "probabilities"
    assert np.abs(graph.answers - outputs(forest, task, x)).max() < 1e-6
    features, target = make_regression(200, 6, random_state=0)
    boosted = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(features, target)
    task = task_of(boosted)
    graph = onnx_export.convert(boosted, pd.DataFrame(features), task)
    assert graph.dtype == "float32"  # onnxruntime's TreeEnsembleRegressor answers float only
    scale = np.abs(target).max()
    assert np.abs(graph.answers - outputs(boosted, task, features)).max() < 1e-5 * scale


def test_onnx_does_not_apply_to_text_features():
    frame, labels = _category_frame()
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["color", "shape"]), (SimpleImputer(), ["size", "weight"])),
        LogisticRegression(),
    ).fit(frame, labels)
    with pytest.raises(onnx_export.NoOnnx, match=r"text feature\(s\) color, shape"):
        onnx_export.convert(model, frame, task_of(model))


def test_request_lines_get_when_a_query_carries_them_post_otherwise():
    line = requests_file.request_line({"a": 1.0, "b": 0.1, "c": "red"}, 0.25)
    assert line == {"method": "GET", "query": {"a": "1", "b": "0.1", "c": "red"}, "expected": 0.25}
    line = requests_file.request_line({"a": math.nan, "c": "red"}, {"x": 0.5})
    assert line["method"] == "POST" and line["body"] == {"a": None, "c": "red"}
    assert line["headers"] == {"content-type": "application/json"}
    assert requests_file.request_line({"c": ""}, 1.0)["method"] == "POST"
    for value in (0.1, 1e-300, -2.5e17, 123456789.0, 1 / 3):
        assert float(requests_file.number_text(value)) == value


def test_class_paths_are_the_public_ones():
    assert public_class_path(RandomForestClassifier) == "sklearn.ensemble.RandomForestClassifier"
    assert public_class_path(LogisticRegression) == "sklearn.linear_model.LogisticRegression"


def test_a_skops_file_loads_trusting_only_scikit_learn_and_numpy_types(tmp_path: Path):
    import skops.io

    x, y = _iris()
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    (tmp_path / "forest.skops").write_bytes(skops.io.dumps(forest))
    loaded = load_model(tmp_path / "forest.skops")
    assert loaded.format == "skops" and loaded.reference_name == "reference.skops"
    assert loaded.skops_trusted == ["sklearn.tree._tree.Tree"]
    custom = make_pipeline(FunctionTransformer(_double), LogisticRegression(max_iter=500)).fit(x, y)
    (tmp_path / "custom.skops").write_bytes(skops.io.dumps(custom))
    with pytest.raises(ModelFileError, match=r"types outside scikit-learn and numpy \(.*_double\)"):
        load_model(tmp_path / "custom.skops")


def _double(x):
    return np.asarray(x) * 2


def test_tasks_the_handler_does_not_serve_are_refused():
    x, y = _iris()
    with pytest.raises(TaskError, match="LinearSVC has no predict_proba"):
        task_of(LinearSVC().fit(x, y))
    with pytest.raises(TaskError, match="KMeans is neither a classifier nor a regressor"):
        task_of(KMeans(n_clusters=2, n_init=1, random_state=0).fit(x))
    two_outputs = LinearRegression().fit(x.iloc[:, :2], x.iloc[:, 2:])
    with pytest.raises(TaskError, match="answers"):
        outputs(two_outputs, task_of(two_outputs), x.iloc[:, :2])


def test_the_stated_tolerance_is_ten_times_the_measured_or_the_floor_at_the_answers_scale():
    assert stated_tolerance(0.0, 1.0, "exact") == 1e-12
    assert stated_tolerance(0.0, 500.0, "exact") == pytest.approx(5e-10)
    assert stated_tolerance(2e-4, 544.0, "float32") == pytest.approx(5.44e-3)
    assert stated_tolerance(4.5e-8, 1.0, "float64") == pytest.approx(4.5e-7)
