"""``python -m bench --model FILE --sample CSV``: the main job on a user's scikit-learn model.

The slow tests build a small model from data scikit-learn generates (no downloads), save it with
joblib beside a sample CSV, and run the job as a user would, in real processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.modelrun import fastest
from bench.results import ColdstartRun, read_document
from tests.conftest import run_module

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "m.joblib"], "--model FILE needs --sample CSV"),
        (["--sample", "s.csv"], "--sample goes with --model"),
        (["--models", "models", "--label", "y"], "--label goes with --model"),
        (["--model", "m.joblib", "--sample", "s.csv", "--config", "c.toml"], "omit --config"),
        (["--model", "m.joblib", "--sample", "s.csv", "--data", "d.csv"], "omit --config, --data"),
    ],
)
def test_model_argument_errors_are_one_line_and_exit_2(args, words, capsys, tmp_path):
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_model_is_not_an_abbreviation_of_models(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--mode", "x.joblib"])  # allow_abbrev=False: not taken for --model or --models
    assert exited.value.code == 2 and "unrecognized arguments: --mode" in capsys.readouterr().err


def test_fastest_is_the_lowest_measured_warm_p50_but_never_the_reference():
    document = read_document(GOLDEN / "coldstart-v4.json")
    assert isinstance(document, ColdstartRun)
    best, line = fastest(document)
    rows = {row.name: row.warm_us.p50 for row in document.variants}
    assert best == min(rows, key=rows.__getitem__)
    assert line.startswith(f"fastest variant: {best} (lowest warm in-handler p50")
    only_reference = ColdstartRun(
        metadata=document.metadata,
        partial=False,
        variants=[],
        trials={},
        status=document.status,
    )
    assert fastest(only_reference)[0] is None


def _forest(folder: Path, shuffled: bool = False) -> tuple[Path, Path]:
    import joblib
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)
    frame = pd.DataFrame(X, columns=[f"sensor_{i}" for i in range(6)])
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(frame, y)
    joblib.dump(model, folder / "forest.joblib")
    sample = frame[list(reversed(frame.columns))] if shuffled else frame
    sample.head(50).to_csv(folder / "forest.csv", index=False)
    return folder / "forest.joblib", folder / "forest.csv"


def _trained_forest(folder: Path) -> Path:
    """``python -m training --model`` on :func:`_forest`: the models directory."""
    model, sample = _forest(folder)
    models = folder / "models"
    trained = run_module("training", "--model", str(model), "--sample", str(sample), "--out", str(models))
    assert trained.returncode == 0, trained.stderr[-2000:]
    return models


@pytest.mark.slow
def test_the_main_job_on_a_user_s_forest(tmp_path):
    model, sample = _forest(tmp_path)
    out = tmp_path / "run"
    completed = run_module(
        "bench", "--quick", "--model", str(model), "--sample", str(sample), "--out", str(out), timeout=400
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = completed.stdout
    profile = read_document(out / "coldstart.json")
    assert isinstance(profile, ColdstartRun)
    ran = {row.name for row in profile.variants}
    skipped = {item.variant: item.reason for item in profile.skipped}
    assert "reference" in ran and "onnx" in ran and "lean" in skipped and "tutorial" in skipped
    assert ran.isdisjoint(skipped) and "variants that apply: reference" in summary
    best = min((row for row in profile.variants if row.name != "reference"), key=lambda r: r.warm_us.p50)
    assert f"fastest variant: {best.name} (" in summary
    assert f"warm in-handler p50 (fresh process), reference / {best.name}: " in summary
    for function in ("model-reference", f"model-{best.name}"):
        for scenario in ("steady", "step"):
            data = json.loads((out / f"locust-{function}-{scenario}.json").read_text())
            endpoint = data["endpoints"][f"staging/{function}"]
            answered = endpoint["sent"] - endpoint["outcomes"]["cancelled"]
            assert endpoint["outcomes"]["2xx"] == answered > 0, (function, scenario)
            assert data["metadata"]["options"]["verify"] is True
            assert endpoint["verify_failures"] == 0
    report = (out / "report" / "index.html").read_text()
    assert "why it does not apply" in report and skipped["lean"] in report.replace("&#x27;", "'")


@pytest.mark.slow
def test_a_shuffled_sample_exits_2_naming_the_columns(tmp_path):
    model, sample = _forest(tmp_path, shuffled=True)
    out = tmp_path / "run"
    completed = run_module(
        "bench", "--quick", "--model", str(model), "--sample", str(sample), "--out", str(out), timeout=120
    )
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "sensor_0" in completed.stderr and "sensor_5" in completed.stderr
    assert not (out / "models" / "manifest.json").exists()


@pytest.mark.slow
def test_the_profile_of_a_user_s_model_sends_its_requests_and_refuses_an_error_answer(tmp_path):
    models = _trained_forest(tmp_path)
    results = tmp_path / "profile.json"
    common = ["--trials", "1", "--warm", "5", "--no-progress", "--models", str(models)]
    profiled = run_module("bench.coldstart", "--variants", "numpy", *common, "--results", str(results))
    assert profiled.returncode in (0, 1, 3), profiled.stderr[-2000:]
    document = read_document(results)
    assert isinstance(document, ColdstartRun) and [row.name for row in document.variants] == ["numpy"]
    assert document.metadata.options["requests"] == str(models / "requests.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": {"G1": "1"}}\n')
    refused = run_module("bench.coldstart", "--variants", "numpy", *common, "--requests", str(bad))
    assert refused.returncode == 1 and "the first call answered 400" in refused.stderr


@pytest.mark.slow
def test_inprocess_measures_every_variant_of_a_user_s_model_on_its_own_requests(tmp_path):
    models = _trained_forest(tmp_path)
    results = tmp_path / "inprocess.json"
    measured = run_module(
        "bench.inprocess", "--variants", "all", "--calls", "50", "--warmup", "5",
        "--models", str(models), "--results", str(results),
    )  # fmt: skip
    assert measured.returncode == 0, measured.stderr[-2000:]
    rows = {row.name: row for row in read_document(results).variants}
    assert "tutorial" not in rows and {"reference", "numpy", "onnx"} <= set(rows), set(rows)
    for row in rows.values():  # every call answered the model's own request with a prediction
        assert json.loads(row.response_body)["prediction"] is not None, (row.name, row.response_body)


@pytest.mark.slow
def test_the_fuzzer_takes_a_user_s_model_and_catches_a_wrong_prediction(tmp_path):
    from bench.hardening.fuzz import fuzz_model_handlers

    models = _trained_forest(tmp_path)
    results = tmp_path / "fuzz.json"
    fuzzed = run_module(
        "bench.hardening.fuzz", "--models", str(models), "--cases", "200", "--seed", "1",
        "--results", str(results),
    )  # fmt: skip
    assert fuzzed.returncode == 0, fuzzed.stdout[-2000:] + fuzzed.stderr[-2000:]
    (campaign,) = read_document(results).campaigns  # the handler's: the gateway's cases are the tutorial's
    assert campaign.surface == "handler" and {"reference", "onnx"} <= set(campaign.variants)

    def off_by_a_little(event, context):  # a 200 whose prediction is not the model's
        body = json.dumps({"prediction": 0.123456, "model": "x"})
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body}

    caught = fuzz_model_handlers({"reference": off_by_a_little}, models, 200, seed=1)
    assert caught.failure is not None and "prediction" in caught.failure, caught.failure
