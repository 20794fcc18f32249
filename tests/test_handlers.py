import importlib
import itertools
import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from handler.features import InvalidInput, make_parser
from handler.manifest import InputSpec
from handler.tutorial import FEATURES
from handler.variants import available_variants
from tests.conftest import TUTORIAL_QUERY, run_command, run_module

ALL_INPUTS = np.array(list(itertools.product([0.0, 1.0], repeat=10)), dtype=np.float64)
TUTORIAL_EVENT = {
    "queryStringParameters": {
        "G1": 1, "G2": 0, "G3": 1, "G4": 1, "G5": 0, "G6": 0, "G7": 1, "G8": 0, "G9": 1, "G10": 0,
    }
}  # fmt: skip


def probe(variant: str, models: Path) -> dict:
    completed = run_module("tests.variant_probe", variant, str(models))
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


def sklearn_reference(models: Path) -> np.ndarray:
    model = joblib.load(models / "logit.pkl")
    del model.feature_names_in_  # predict on a plain float array (ALL_INPUTS), no feature-name warning
    return model.predict_proba(ALL_INPUTS)[:, 1]


@pytest.mark.parametrize("variant", [variant.name for variant in available_variants()])
@pytest.mark.slow
def test_every_variant_agrees_with_sklearn_on_all_1024_inputs(variant: str, models_dir: Path):
    result = probe(variant, models_dir)
    if variant == "tutorial":
        predictions = [float(r["body"].removeprefix("Prediction ")) for r in result["responses"]]
    else:
        assert all(r["statusCode"] == 200 for r in result["responses"])
        predictions = [json.loads(r["body"])["prediction"] for r in result["responses"]]
    assert np.abs(np.asarray(predictions) - sklearn_reference(models_dir)).max() <= 1e-12


def test_lean_variant_never_imports_numpy_pandas_or_sklearn(models_dir: Path):
    assert probe("lean", models_dir)["imported"] == []


@pytest.mark.parametrize("variant", ["json-numpy", "onnx"])
def test_numpy_only_variants_import_neither_pandas_nor_sklearn(variant: str, models_dir: Path):
    # (the sklearn-based numpy variants import pandas anyway: sklearn imports it when installed)
    imported = probe(variant, models_dir)["imported"]
    assert "numpy" in imported
    assert not {"pandas", "sklearn", "scipy"} & set(imported)


def test_first_response_is_cold_then_warm(models_dir: Path):
    responses = probe("lean", models_dir)["responses"]
    first, second = responses[0], responses[1]
    assert json.loads(first["body"])["cold"] is True
    assert "init;dur=" in first["headers"]["Server-Timing"]
    assert "cold" not in json.loads(second["body"])
    assert "init;dur=" not in second["headers"]["Server-Timing"]
    assert second["headers"]["Server-Timing"].startswith("predict;dur=")
    assert first["headers"]["Content-Type"] == "application/json"


@pytest.mark.slow
def test_tutorial_handler_reproduces_the_published_prediction(real_models_dir: Path, monkeypatch):
    monkeypatch.setenv("MODEL_URI", str(real_models_dir / "logit.pkl"))
    sys.modules.pop("handler.seed", None)
    seed = importlib.import_module("handler.seed")
    try:
        body = seed.lambda_handler(TUTORIAL_EVENT, None)["body"]
    finally:
        sys.modules.pop("handler.seed", None)
    assert body.startswith("Prediction ")
    assert abs(float(body.removeprefix("Prediction ")) - 0.10652960571858641) <= 1e-12


@pytest.fixture()
def lean_app(models_dir: Path, monkeypatch):
    monkeypatch.setenv("MODEL_FORMAT", "json")
    monkeypatch.setenv("INPUT_PATH", "python")
    monkeypatch.setenv("MODEL_URI", str(models_dir / "logit.json"))
    monkeypatch.delenv("MODEL_SHA256", raising=False)
    sys.modules.pop("handler.app", None)
    yield importlib.import_module("handler.app")
    sys.modules.pop("handler.app", None)


def test_tutorial_event_with_numbers_predicts(lean_app):
    response = lean_app.lambda_handler(TUTORIAL_EVENT, None)
    assert response["statusCode"] == 200


@pytest.mark.parametrize(
    ("params", "bad_fields"),
    [
        (None, set(FEATURES)),
        ({}, set(FEATURES)),
        ({**TUTORIAL_QUERY, "G3": "nan"}, {"G3"}),
        ({**TUTORIAL_QUERY, "G3": "inf", "G4": "-Infinity"}, {"G3", "G4"}),
        ({**TUTORIAL_QUERY, "G5": "1e308"}, {"G5"}),
        ({**TUTORIAL_QUERY, "G5": "yes", "G6": ""}, {"G5", "G6"}),
        ({**TUTORIAL_QUERY, "G7": "١"}, {"G7"}),  # an Arabic-Indic digit: float() would take it
        ({**TUTORIAL_QUERY, "G8": " 1"}, {"G8"}),
        ({**TUTORIAL_QUERY, "G9": "1" * 40}, {"G9"}),
        ({**TUTORIAL_QUERY, "G10": True}, {"G10"}),
        ({**TUTORIAL_QUERY, "G10": [1]}, {"G10"}),
        ({**TUTORIAL_QUERY, "g1": "1"}, {"g1"}),
        ({k: v for k, v in TUTORIAL_QUERY.items() if k != "G2"}, {"G2"}),
    ],
)
def test_bad_input_is_a_400_naming_every_bad_field(lean_app, params, bad_fields):
    response = lean_app.lambda_handler({"queryStringParameters": params}, None)
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert set(body["details"]) == bad_fields
    assert body["error"]


def test_repeated_parameter_is_refused(lean_app):
    event = {
        "queryStringParameters": dict(TUTORIAL_QUERY),
        "multiValueQueryStringParameters": {**{k: [v] for k, v in TUTORIAL_QUERY.items()}},
    }
    assert lean_app.lambda_handler(event, None)["statusCode"] == 200
    event["multiValueQueryStringParameters"]["G1"] = ["1", "0"]
    response = lean_app.lambda_handler(event, None)
    assert response["statusCode"] == 400
    assert "2 times" in json.loads(response["body"])["details"]["G1"]


@pytest.mark.parametrize("event", [None, [], "G1=1", 42, {"queryStringParameters": "G1=1"}])
def test_malformed_events_never_raise(lean_app, event):
    assert lean_app.lambda_handler(event, None)["statusCode"] == 400


parse_features = make_parser([InputSpec(name) for name in FEATURES])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0.0), ("1", 1.0), ("1.0", 1.0), ("0.5", 0.5), ("-0", 0.0), ("1e0", 1.0), (".5", 0.5)],
)
def test_accepted_number_spellings(raw, expected):
    values = parse_features({"queryStringParameters": {**TUTORIAL_QUERY, "G1": raw}})
    assert values[0] == expected


def test_invalid_input_keeps_a_message_and_details():
    with pytest.raises(InvalidInput) as caught:
        parse_features({"queryStringParameters": {"G1": "x"}})
    assert caught.value.details["G1"].startswith("is not a decimal number")
    assert caught.value.details["G2"] == "is required"


def copy_models(models_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(models_dir, target)
    return target


def test_tampered_artifact_is_refused_before_unpickling(models_dir: Path, tmp_path: Path):
    models = copy_models(models_dir, tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (models / "logit.pickle").write_bytes(pickle.dumps(Exploit()))
    completed = run_module(
        "handler.app",
        env={
            "MODEL_FORMAT": "pickle",
            "INPUT_PATH": "numpy",
            "MODEL_URI": str(models / "logit.pickle"),
        },
    )
    assert completed.returncode != 0
    assert "sha256 mismatch" in completed.stderr
    assert "ModelLoadError" in completed.stderr
    assert not marker.exists()


def test_model_sha256_variable_overrides_the_manifest(models_dir: Path, tmp_path: Path):
    models = copy_models(models_dir, tmp_path)
    (models / "manifest.json").unlink()
    env = {"MODEL_FORMAT": "json", "INPUT_PATH": "python", "MODEL_URI": str(models / "logit.json")}
    missing = run_module("handler.app", env=env)
    assert missing.returncode != 0 and "set MODEL_SHA256" in missing.stderr
    wrong = run_module("handler.app", env={**env, "MODEL_SHA256": "0" * 64})
    assert wrong.returncode != 0 and "sha256 mismatch" in wrong.stderr
    digest = json.loads((models_dir / "manifest.json").read_text())["artifacts"]["logit.json"]
    right = run_module("handler.app", env={**env, "MODEL_SHA256": digest["sha256"]})
    assert right.returncode == 0, right.stderr


def test_invalid_format_and_input_path_pair_is_refused(models_dir: Path):
    completed = run_module(
        "handler.app",
        env={"MODEL_FORMAT": "onnx", "INPUT_PATH": "pandas", "MODEL_URI": str(models_dir)},
    )
    assert completed.returncode != 0
    assert "does not work with MODEL_FORMAT='onnx'" in completed.stderr


EVIL_MODULE = """
import os
import pathlib


class Evil:
    def __setstate__(self, state):  # runs when an unpickler or skops builds the object
        pathlib.Path(os.environ["EVIL_MARKER"]).touch()
        self.__dict__.update(state)
"""
EVIL_ARTIFACT = """
import sys

import joblib
import skops.io
from evilmod import Evil

model = joblib.load(sys.argv[1])
model.payload = Evil()
model.payload.note = "state, so that loading calls __setstate__"
open(sys.argv[2], "wb").write(skops.io.dumps(model))
"""


@pytest.mark.slow
def test_skops_artifact_with_an_untrusted_type_is_refused_even_when_its_hash_matches(
    models_dir: Path, tmp_path: Path
):
    import hashlib

    (tmp_path / "evilmod.py").write_text(EVIL_MODULE)
    artifact = tmp_path / "logit.skops"
    env = {"PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-c", EVIL_ARTIFACT, str(models_dir / "logit.pkl"), str(artifact)]
    written = run_command(command, env=env, timeout=120)
    assert written.returncode == 0, written.stderr
    # The payload is live: a loader that trusts the type runs it.
    live_marker = tmp_path / "ran-when-trusted"
    trusting = (
        "import sys, skops.io; skops.io.loads(open(sys.argv[1], 'rb').read(), trusted=['evilmod.Evil'])"
    )
    loaded = run_command(
        [sys.executable, "-c", trusting, str(artifact)],
        env={**env, "EVIL_MARKER": str(live_marker)},
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert live_marker.exists()
    # The handler: the hash matches (MODEL_SHA256 is the artifact's own), yet it refuses.
    marker = tmp_path / "ran-in-the-handler"
    completed = run_module(
        "handler.app",
        env={
            "MODEL_FORMAT": "skops",
            "INPUT_PATH": "numpy",
            "MODEL_URI": str(artifact),
            "MODEL_SHA256": hashlib.sha256(artifact.read_bytes()).hexdigest(),
            "EVIL_MARKER": str(marker),
            "PYTHONPATH": str(tmp_path),
        },
    )
    assert completed.returncode != 0
    assert "ModelLoadError" in completed.stderr and "untrusted types" in completed.stderr
    assert "evilmod.Evil" in completed.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_the_trained_skops_artifact_holds_no_untrusted_types(models_dir: Path):
    import skops.io

    assert skops.io.get_untrusted_types(file=models_dir / "logit.skops") == []
