"""A user's own scikit-learn model: the manifest's schema, validation, predictions, variants.

The models (tests.model_fixtures) are built from data scikit-learn ships or generates: a random
forest on 24 named numbers, a multiclass Pipeline(StandardScaler, LogisticRegression) with string
labels, a gradient-boosting regressor, a pipeline with a string category column and a nullable
number, and a logistic regression fitted on a plain array (no feature_names_in_).
"""

from __future__ import annotations

import base64
import importlib
import json
import math
import shutil
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from bench.reference import check
from handler.features import InvalidInput, make_parser
from handler.local.config import DEFAULT_CONFIG, load_config
from handler.local.functions import config_text, tutorial_config_text
from handler.manifest import InputSpec, ManifestError, parse, read
from handler.variants import VARIANTS, applicability, functions
from tests import model_fixtures
from tests.conftest import run_module, start_emulator

MODELS = {make.__name__: make for make in model_fixtures.ALL}


@pytest.fixture(scope="module")
def user_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("user-models")
    return {name: model_fixtures.write_models(make(), root / name) for name, make in MODELS.items()}


# ---- the manifest ---------------------------------------------------------------------------


V1 = {
    "schema_version": 1,
    "features": ["x", "y"],
    "artifacts": {"m.json": {"format": "json", "sha256": "ab" * 32, "bytes": 3}},
    "versions": {"python": "3.12"},
    "rows": 10,
}


def test_a_version_1_manifest_reads_as_numbers_and_a_binary_0_1_task():
    manifest = parse(json.dumps(V1))
    assert [(spec.name, spec.type, spec.nullable) for spec in manifest.inputs] == [
        ("x", "number", False),
        ("y", "number", False),
    ]
    assert (manifest.task.kind, manifest.task.classes, manifest.task.positive_class) == ("binary", [0, 1], 1)
    assert manifest.numbers_only and manifest.unavailable == {} and manifest.memory_size_mb is None
    assert json.loads(manifest.to_json()) == V1  # written back as it was: still version 1


def test_a_version_2_manifest_round_trips(user_models):
    text = (user_models["colors_pipeline"] / "manifest.json").read_text()
    manifest = parse(text)
    assert json.loads(manifest.to_json()) == json.loads(text)
    color = manifest.inputs[-1]
    assert (color.type, color.max_chars, color.categories) == ("string", 64, ("blue", "green", "red"))
    assert manifest.inputs[0].nullable and not manifest.numbers_only
    assert manifest.file_for("", role="reference") == "reference.joblib"
    assert manifest.file_for("joblib") == "model.pkl"  # a derived file before the user's own
    assert manifest.tolerance("model.pkl") == 1e-12 and manifest.memory_size_mb == 256


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 3}, "schema_version 3 is not supported (this version reads 1 and 2)"),
        ({"inputs": [{"name": "y"}, {"name": "x"}]}, "inputs do not name the features, in their order"),
        ({"task": {"kind": "binary", "classes": [0, 1, 2], "positive_class": 1}}, "must list 2 classes"),
        ({"task": {"kind": "binary", "classes": [0, 1], "positive_class": 5}}, "positive_class 5"),
        ({"task": {"kind": "ranking"}}, "task.kind 'ranking'"),
        ({"inputs": [{"name": "x", "type": "date"}, {"name": "y"}]}, "inputs[0].type 'date'"),
        ({"inputs": [{"name": "x", "type": "string", "categories": [1]}, {"name": "y"}]}, "categories"),
    ],
)
def test_a_manifest_it_cannot_use_is_refused_in_one_line(change, message):
    document = {
        **V1,
        "schema_version": 2,
        "inputs": [{"name": "x"}, {"name": "y"}],
        "task": {"kind": "regression"},
    }
    with pytest.raises(ManifestError) as caught:
        parse(json.dumps({**document, **change}), "m.json")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("m.json: ")


# ---- validation -------------------------------------------------------------------------------

MIXED = [
    InputSpec("size", "number", nullable=True),
    InputSpec("weight"),
    InputSpec("color", "string", max_chars=8, categories=("blue", "green", "red")),
]
parse_mixed = make_parser(MIXED)


def test_a_query_string_and_a_json_body_give_the_same_values():
    query = {"size": "1.5", "weight": "2", "color": "red"}
    assert parse_mixed({"httpMethod": "GET", "queryStringParameters": query}) == [1.5, 2.0, "red"]
    body = json.dumps({"size": 1.5, "weight": 2, "color": "red"})
    assert parse_mixed({"httpMethod": "POST", "body": body}) == [1.5, 2.0, "red"]
    encoded = base64.b64encode(body.encode()).decode()
    assert parse_mixed({"httpMethod": "POST", "body": encoded, "isBase64Encoded": True}) == [1.5, 2.0, "red"]
    assert parse_mixed({"body": {"size": 1.5, "weight": 2, "color": "red"}}) == [1.5, 2.0, "red"]  # direct


def test_with_a_query_string_the_body_is_ignored():
    query = {"size": "1.5", "weight": "2", "color": "red"}
    for method in ("GET", "POST"):
        event = {"httpMethod": method, "queryStringParameters": query, "body": "not JSON"}
        assert parse_mixed(event) == [1.5, 2.0, "red"]


def test_a_nullable_input_may_be_missing_and_becomes_nan():
    empty = parse_mixed({"queryStringParameters": {"size": "", "weight": "2", "color": "red"}})
    null = parse_mixed({"body": json.dumps({"size": None, "weight": 2, "color": "red"})})
    assert math.isnan(empty[0]) and math.isnan(null[0])


def details(event: object) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_mixed(event)
    return caught.value.details


def test_every_bad_field_is_named_in_one_answer():
    body = {"size": True, "weight": None, "color": "purple", "colour": "red"}
    found = details({"httpMethod": "POST", "body": json.dumps(body)})
    assert found == {
        "size": "must be a number, not a boolean",
        "weight": "must not be null",
        "color": "is not one of the model's categories: 'blue', 'green', 'red'",
        "colour": "is not a parameter of this model (expected size, weight, color)",
    }
    found = details({"queryStringParameters": {"size": "1e9", "color": "x" * 9}})
    assert set(found) == {"size", "weight", "color"}
    assert found["weight"] == "is required" and found["color"] == "is longer than 8 characters"
    assert (
        details({"body": json.dumps({"size": 1, "weight": 1, "color": 7})})["color"]
        == "must be a string, not int"
    )


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"httpMethod": "POST", "body": "{not json"}, "body"),
        ({"httpMethod": "POST", "body": "[1, 2]"}, "body"),
        ({"httpMethod": "POST", "body": "%%%", "isBase64Encoded": True}, "body"),
        ({"queryStringParameters": {"size": "1"}, "body": "{}"}, "weight"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(event, field):
    assert field in details(event)


def test_the_fast_path_and_the_strict_one_agree():
    parse = make_parser([InputSpec("a"), InputSpec("b")])
    assert parse({"queryStringParameters": {"a": "1", "b": "0"}}) == [1.0, 0.0]  # fast
    assert parse({"queryStringParameters": {"a": "1", "b": "0.0"}}) == [1.0, 0.0]  # strict
    assert parse({"body": '{"a": 1, "b": 0}'}) == [1.0, 0.0]
    with pytest.raises(InvalidInput):
        parse(
            {
                "queryStringParameters": {"a": "1", "b": "0"},
                "multiValueQueryStringParameters": {"a": ["1", "0"]},
            }
        )


# ---- the handler, in process ------------------------------------------------------------------


def load_app(monkeypatch, models: Path, variant: str):
    monkeypatch.delenv("MODEL_SHA256", raising=False)
    for key, value in VARIANTS[variant].environment(str(models)).items():
        monkeypatch.setenv(key, value)
    sys.modules.pop("handler.app", None)
    try:
        return importlib.import_module("handler.app")
    finally:
        sys.modules.pop("handler.app", None)


def answer(app, event: dict) -> tuple[int, dict]:
    response = app.lambda_handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def test_a_category_the_model_would_reject_is_a_400_naming_it(user_models, monkeypatch):
    app = load_app(monkeypatch, user_models["colors_pipeline"], "pandas")
    status, body = answer(app, {"queryStringParameters": {"size": "oops", "weight": "50", "color": "purple"}})
    assert status == 400 and set(body["details"]) == {"size", "color"}
    status, body = answer(
        app, {"httpMethod": "POST", "body": json.dumps({"size": None, "weight": 50, "color": "red"})}
    )
    assert status == 200 and 0.0 <= body["prediction"] <= 1.0
    status, body = answer(app, {"queryStringParameters": {"size": "", "weight": "50", "color": "blue"}})
    assert status == 200
    status, body = answer(app, {"httpMethod": "POST", "body": "{"})
    assert status == 400 and body["error"] == "the body is not JSON"


def test_predictions_have_the_task_s_shape(user_models, monkeypatch):
    iris = load_app(monkeypatch, user_models["iris_pipeline"], "lean")
    first = json.loads((user_models["iris_pipeline"] / "requests.jsonl").read_text().splitlines()[0])
    status, body = answer(iris, {"queryStringParameters": first["query"]})
    assert status == 200 and set(body["prediction"]) == {"setosa", "versicolor", "virginica"}
    assert abs(sum(body["prediction"].values()) - 1.0) < 1e-12
    assert check(first["expected"], body["prediction"], 1e-9) is None
    diabetes = load_app(monkeypatch, user_models["diabetes_regressor"], "numpy")
    first = json.loads((user_models["diabetes_regressor"] / "requests.jsonl").read_text().splitlines()[0])
    status, body = answer(diabetes, {"queryStringParameters": first["query"]})
    assert status == 200 and isinstance(body["prediction"], float) and body["prediction"] > 1.0
    assert check(first["expected"], body["prediction"], 1e-12) is None


def probe(variant: str, models: Path) -> dict:
    completed = run_module("tests.variant_probe", variant, str(models))
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("model", list(MODELS))
def test_every_variant_that_applies_answers_every_recorded_request(model, user_models):
    models = user_models[model]
    manifest = read(models / "manifest.json")
    requests = [json.loads(line) for line in (models / "requests.jsonl").read_text().splitlines()]
    assert any(r["method"] == "GET" for r in requests)
    applied = [entry for entry in applicability(models) if entry.applies]
    assert applied
    for entry in applied:
        responses = probe(entry.variant.name, models)["responses"]
        tolerance = manifest.tolerance(entry.artifact)
        for request, response in zip(requests, responses, strict=True):
            assert response["statusCode"] == 200, (entry.variant.name, response["body"])
            problem = check(request["expected"], json.loads(response["body"])["prediction"], tolerance)
            assert problem is None, f"{entry.variant.name}: {problem}"


def test_the_lean_variant_of_a_user_s_linear_model_imports_only_the_standard_library(user_models):
    result = probe("lean", user_models["iris_pipeline"])
    assert result["imported"] == []
    assert all(response["statusCode"] == 200 for response in result["responses"])


def test_which_variants_apply_and_why_the_others_do_not(user_models, models_dir):
    def reasons(model: str) -> dict[str, str | None]:
        return {entry.variant.name: entry.reason for entry in applicability(user_models[model])}

    forest = reasons("forest")
    assert forest["onnx"] is None and forest["reference"] is None and forest["numpy"] is None
    assert forest["lean"].startswith("not a linear model") and forest["tutorial"].startswith(
        "only the tutorial's"
    )
    assert reasons("diabetes_regressor")["onnx"] is None
    assert reasons("iris_pipeline")["lean"] is None
    colors = reasons("colors_pipeline")
    assert colors["numpy"] == colors["pickle"] == "the model has string inputs"
    assert colors["pandas"] is None and colors["onnx"] == "the model has string inputs"
    assert reasons("plain_array")["numpy"] is None and reasons("plain_array")["lean"] is None
    assert list(functions(user_models["colors_pipeline"])) == [
        "model-reference",
        "model-pandas",
        "model-pickle-pandas",
        "model-skops-pandas",
    ]
    assert list(functions(models_dir))[:2] == ["logitModel", "logit-pandas"]
    tutorial = {entry.variant.name: entry.reason for entry in applicability(models_dir)}
    assert tutorial["reference"] and all(
        reason is None for name, reason in tutorial.items() if name != "reference"
    )


def copy(models: Path, tmp_path: Path) -> Path:
    target = tmp_path / models.name
    shutil.copytree(models, target)
    return target


def test_a_model_whose_features_disagree_with_the_manifest_is_refused_in_one_line(user_models, tmp_path):
    models = copy(user_models["forest"], tmp_path)
    document = json.loads((models / "manifest.json").read_text())
    document["features"][:2] = document["features"][1::-1]
    document["inputs"][:2] = document["inputs"][1::-1]
    (models / "manifest.json").write_text(json.dumps(document))
    completed = run_module("handler.app", env=VARIANTS["numpy"].environment(str(models)))
    assert completed.returncode != 0
    (line,) = [
        line for line in completed.stderr.splitlines() if line.startswith("handler.artifacts.ModelLoadError")
    ]
    assert (
        "expects features ['sensor_00', 'sensor_01', 'sensor_02', 'sensor_03', 'sensor_04', … 24 in all]"
        in line
    )
    assert "the manifest says ['sensor_01', 'sensor_00'" in line


def test_a_manifest_describing_another_model_is_refused_even_with_model_sha256(user_models, tmp_path):
    models = copy(user_models["plain_array"], tmp_path)
    document = json.loads((models / "manifest.json").read_text())
    digest = document["artifacts"]["model.json"]["sha256"]
    document["artifacts"]["model.json"]["sha256"] = "0" * 64
    (models / "manifest.json").write_text(json.dumps(document))
    env = {**VARIANTS["lean"].environment(str(models)), "MODEL_SHA256": digest}
    completed = run_module("handler.app", env=env)
    assert completed.returncode != 0 and "describes another model.json" in completed.stderr


def test_the_default_config_is_generated_from_the_variants():
    assert DEFAULT_CONFIG.read_text() == tutorial_config_text()
    names = [function.name for function in load_config(DEFAULT_CONFIG).functions]
    variants = [variant.function_name for variant in VARIANTS.values() if variant.name != "reference"]
    assert names == [*variants, "floor-noop"]  # the no-op measured beside every Duration


def test_a_user_s_config_serves_the_variants_that_apply_and_says_why_not(user_models, tmp_path):
    models = user_models["colors_pipeline"]
    path = tmp_path / "colors.toml"
    path.write_text(config_text(models))
    functions = {function.name: function for function in load_config(path).functions}
    variants = {"model-reference", "model-pandas", "model-pickle-pandas", "model-skops-pandas"}
    assert set(functions) == {*variants, "floor-noop"}
    assert functions["model-reference"].env["MODEL_URI"] == str(models.resolve() / "reference.joblib")
    assert functions["model-reference"].env["MODEL_FORMAT"] == "joblib"
    assert functions["model-pandas"].memory_mb == 256  # the manifest's memory_size_mb
    assert "# numpy: the model has string inputs" in path.read_text()


@pytest.mark.slow
def test_handler_serve_with_models_serves_a_user_s_model_by_get_and_post(user_models, tmp_path):
    models = user_models["colors_pipeline"]
    requests = [json.loads(line) for line in (models / "requests.jsonl").read_text().splitlines()]
    get = next(r for r in requests if r["method"] == "GET")
    post = next(r for r in requests if r["method"] == "POST")
    running = start_emulator("--functions", "model-pandas", log_file=tmp_path / "emulator.log", models=models)
    try:
        url = running.url("model-pandas", urllib.parse.urlencode(get["query"]))
        with urllib.request.urlopen(url, timeout=60) as response:
            assert check(get["expected"], json.loads(response.read())["prediction"], 1e-12) is None
        data = json.dumps(post["body"]).encode()
        request = urllib.request.Request(
            running.url("model-pandas"), data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert check(post["expected"], json.loads(response.read())["prediction"], 1e-12) is None
        bad = urllib.parse.urlencode({**get["query"], "color": "purple"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(running.url("model-pandas", bad), timeout=60)
        assert caught.value.code == 400 and "color" in json.loads(caught.value.read())["details"]
    finally:
        assert running.stop() == []


def test_check_compares_numbers_and_probabilities_by_class_within_the_tolerance():
    assert check(0.5, 0.5 + 1e-13, 1e-12) is None
    assert "from the expected" in check(0.5, 0.6, 1e-12)
    assert check({"a": 0.25, "b": 0.75}, {"a": 0.25, "b": 0.75}, 0.0) is None
    assert check({"a": 0.25, "b": 0.75}, {"a": 0.3, "b": 0.7}, 1e-3).startswith("class a: ")
    assert "classes" in check({"a": 1.0}, {"b": 1.0}, 1.0)
    assert "expected a number" in check(1.0, True, 1.0)
    assert check(1.0, float("nan"), 1.0) is not None


@pytest.mark.parametrize(
    ("model", "variant"), [("plain_array", "pandas"), ("forest", "numpy"), ("iris_pipeline", "numpy")]
)
def test_no_feature_name_warning_on_any_call(user_models, monkeypatch, model, variant):
    import warnings

    app = load_app(monkeypatch, user_models[model], variant)
    first = json.loads((user_models[model] / "requests.jsonl").read_text().splitlines()[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, _ = answer(app, {"queryStringParameters": first["query"]})
    assert status == 200
    assert not [str(warning.message) for warning in caught if "feature names" in str(warning.message)]


def test_a_skops_file_loads_trusting_only_the_types_its_manifest_lists(user_models, tmp_path):
    models = copy(user_models["colors_pipeline"], tmp_path)
    document = json.loads((models / "manifest.json").read_text())
    assert document["artifacts"]["model.skops"]["trusted"] == ["numpy.dtype"]
    env = VARIANTS["skops-pandas"].environment(str(models))
    assert run_module("handler.app", env=env).returncode == 0
    document["artifacts"]["model.skops"]["trusted"] = []
    (models / "manifest.json").write_text(json.dumps(document))
    completed = run_module("handler.app", env=env)
    assert completed.returncode != 0 and "untrusted types ['numpy.dtype']" in completed.stderr
