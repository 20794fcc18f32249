import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_module
from training.data import FEATURE_MEANS, FEATURES, LABEL_RATE, SYNTHETIC_ROWS, synthetic

EXPECTED_ARTIFACTS = {"logit.pkl", "logit.pickle", "logit.skops", "logit.json", "logit.onnx"}


def test_synthetic_data_has_the_tutorial_schema_and_statistics():
    dataset = synthetic(seed=0)
    assert list(dataset.frame.columns) == [*FEATURES, "label"]
    assert dataset.rows == SYNTHETIC_ROWS
    assert set(np.unique(dataset.frame.to_numpy())) == {0, 1}
    means = dataset.frame[list(FEATURES)].mean().to_numpy()
    # binomial standard error at n=22,905 is at most 0.0033; allow 4 of them
    assert np.abs(means - np.asarray(FEATURE_MEANS)).max() < 0.014
    assert abs(dataset.frame["label"].mean() - LABEL_RATE) < 0.014


def test_one_csv_reader_for_the_training_data_a_table_and_a_sample(tmp_path):
    from training.data import DataError, csv_frame
    from training.sample import SampleError, read_csv
    from training.tabular import read_table

    header = ",".join([*FEATURES, "label"]) + "\n"
    for raw, words in ((b"", "is empty"), (header.encode(), "has no rows"), (b'"a\n', "not a readable CSV")):
        for error in (DataError, SampleError):
            with pytest.raises(error, match=words) as raised:
                csv_frame(raw, "x.csv", error)
            assert str(raised.value).startswith("x.csv ") and "\n" not in str(raised.value)
    path = tmp_path / "only-header.csv"
    path.write_text(header)
    with pytest.raises(SampleError, match="has no rows"):
        read_csv(path, None)
    with pytest.raises(DataError, match="has no rows"):
        read_table(str(path), "label")
    assert list(csv_frame(header.encode() + b"1,0,0,0,0,0,0,0,0,0,1\n", "x.csv").columns)[-1] == "label"


def test_synthetic_data_is_seeded():
    assert synthetic(seed=3).sha256 == synthetic(seed=3).sha256
    assert synthetic(seed=3).sha256 != synthetic(seed=4).sha256


def test_every_artifact_is_written_with_its_hash_in_the_manifest(models_dir: Path):
    manifest = json.loads((models_dir / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == EXPECTED_ARTIFACTS
    for name, entry in manifest["artifacts"].items():
        data = (models_dir / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    assert manifest["features"] == list(FEATURES)
    assert manifest["data"]["rows"] == SYNTHETIC_ROWS
    assert manifest["data"]["source"].startswith("synthetic")
    assert 0.5 < manifest["metrics"]["holdout_roc_auc"] <= 1.0
    assert 0.5 < manifest["metrics"]["holdout_accuracy"] <= 1.0
    assert {"scikit-learn", "numpy", "python"} <= set(manifest["versions"])
    document = json.loads((models_dir / "logit.json").read_text())
    assert document["coef"] == manifest["model"]["coef"]


@pytest.mark.slow
def test_real_data_manifest_records_the_data_hash(real_models_dir: Path):
    manifest = json.loads((real_models_dir / "manifest.json").read_text())
    assert manifest["data"]["sha256"] == ("c8472047c284dd8cddadddab82462e779609213a3c31d497769a52b64ae31fe3")
    assert manifest["data"]["rows"] == 22_905


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("G1,G2,label\n1,0,1\n", "missing column(s) G3"),
        (",".join([*FEATURES, "label"]) + "\n" + ",".join(["2"] * 11) + "\n", "other than 0/1"),
        (",".join([*FEATURES, "label"]) + "\n" + ",".join(["x"] * 11) + "\n", "other than 0/1"),
        ("", "is empty"),
        (",".join([*FEATURES, "label"]) + "\n", "has no rows"),
    ],
    ids=["missing-column", "value-2", "non-numeric", "empty-file", "header-only"],
)
@pytest.mark.slow
def test_bad_data_exits_2_with_one_line_and_keeps_previous_models(
    tmp_path: Path, models_dir: Path, content: str, message: str
):
    out = tmp_path / "models"
    first = run_module("training", "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    completed = run_module("training", "--data", str(bad), "--out", str(out))
    assert completed.returncode == 2
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert message in completed.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "models"]  # no temp left


@pytest.mark.slow
def test_unreadable_path_and_url_exit_2(tmp_path: Path):
    missing = run_module("training", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    url = run_module("training", "--data", "http://127.0.0.1:9/games.csv", "--out", str(tmp_path))
    assert url.returncode == 2
    assert "cannot read http://127.0.0.1:9/games.csv" in url.stderr


@pytest.mark.slow
def test_bad_solver_is_an_argparse_error(tmp_path: Path):
    completed = run_module("training", "--solver", "magic", "--out", str(tmp_path))
    assert completed.returncode == 2
    assert "magic" in completed.stderr


def test_the_tutorials_requests_are_whole_training_rows_with_the_models_answers(models_dir: Path):
    import joblib
    import pandas as pd

    lines = [json.loads(text) for text in (models_dir / "requests.jsonl").read_text().splitlines()]
    assert len(lines) == 1000
    assert all(line["method"] == "GET" and set(line["query"]) == set(FEATURES) for line in lines)
    assert {value for line in lines for value in line["query"].values()} == {"0", "1"}  # the fast path's
    model = joblib.load(models_dir / "logit.pkl")
    rows = pd.DataFrame([{name: float(line["query"][name]) for name in FEATURES} for line in lines])
    expected = model.predict_proba(rows)[:, 1]
    assert [line["expected"] for line in lines] == expected.tolist()
    manifest = json.loads((models_dir / "manifest.json").read_text())
    assert manifest["requests"] == "requests.jsonl"
    assert manifest["task"] == {"kind": "binary", "classes": [0, 1], "positive_class": 1}
    assert manifest["inputs"] == [{"name": name, "type": "number", "nullable": False} for name in FEATURES]
    assert manifest["memory"]["memory_size_mb"] >= 128 and manifest["memory"]["memory_size_mb"] % 64 == 0
