"""The results schema against golden files: a renamed, missing or retyped field fails here, in seconds.

``tests/golden/<kind>-v<N>.json`` is a real document of each kind and version, written by the
tool that produces it (small runs). Each must be read by ``bench.results`` and written back
unchanged, and ``reports`` must render it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from bench.results import KINDS, Document, ResultsError, document_from_dict, read_document
from bench.results.gate import FAIL, Gate

GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))


def _golden(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_kind_has_a_golden_file_of_its_current_version():
    names = {path.stem for path in GOLDEN_FILES}
    missing = [f"{kind}-v{cls.SCHEMA_VERSION}" for kind, cls in KINDS.items()]
    assert [name for name in missing if name not in names] == []


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.stem)
def test_golden_files_read_typed_and_write_back_unchanged(path):
    data = _golden(path)
    document = read_document(path)
    assert isinstance(document, Document) and data["kind"] == document.KIND
    assert path.stem == f"{document.KIND}-v{document.SCHEMA_VERSION}"
    assert document.to_dict() == data


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.stem)
def test_a_renamed_or_missing_field_fails_naming_it(path):
    data = _golden(path)
    renamed = copy.deepcopy(data)
    renamed["metadata_renamed"] = renamed.pop("metadata")
    with pytest.raises(ResultsError, match="'metadata_renamed'"):
        document_from_dict(renamed, path.name)
    cls = KINDS[data["kind"]]
    required = [
        field.name
        for field in dataclasses.fields(cls)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    ]
    for name in required:
        missing = copy.deepcopy(data)
        del missing[name]
        with pytest.raises(ResultsError, match=f"missing field '{name}'"):
            document_from_dict(missing, path.name)


def test_nested_type_errors_and_versions_are_refused():
    data = _golden(GOLDEN / "locust-v2.json")
    wrong = copy.deepcopy(data)
    name = next(iter(wrong["endpoints"]))
    wrong["endpoints"][name]["sent"] = "many"
    with pytest.raises(ResultsError, match=r"endpoints\..*\.sent: expected int"):
        document_from_dict(wrong, "x")
    old = {**data, "schema_version": 1}
    with pytest.raises(ResultsError, match="schema_version 1 is not supported"):
        document_from_dict(old, "x")
    with pytest.raises(ResultsError, match="unknown results kind"):
        document_from_dict({**data, "kind": "nope"}, "x")


def test_a_gate_refuses_an_unknown_status_and_names_its_figures():
    with pytest.raises(ValueError):
        Gate("x", "MAYBE", 1.0, 2.0, "µs", 1, "m")
    gate = Gate.from_dict(Gate("e2e p99", FAIL, 1500.0, 1000.0, "µs", 700, "FAIL: ...").to_dict())
    assert gate.status == FAIL and gate.threshold == 1000.0 and not gate.passed


def test_reports_render_every_golden_file(tmp_path):
    from reports.__main__ import build_report
    from reports.runs import load_runs, verdicts

    runs = load_runs(GOLDEN_FILES)
    index = build_report(runs, tmp_path)
    page = index.read_text(encoding="utf-8")
    for run in runs:
        assert run.label in page  # every document appears, at least in the metadata section
    assert page.count("<h2>") >= 6 and "Traceback" not in page
    verdict_rows = {label: reasons for label, _kind, _status, reasons in verdicts(runs)}
    (sweep,) = [run for run in runs if run.document.KIND == "powertune"]
    # No size passes the golden sweep's target: the row says why (none met it, or could not be judged).
    assert verdict_rows[sweep.label][0].startswith("logitModel: cost: no judged size meets the target")
    (cost,) = [run.document for run in runs if run.document.KIND == "emulator-cost"]
    assert f"emulator / floor: CPU {cost.over_floor_cpu:.2f}×, e2e p50 {cost.over_floor_e2e_p50:.2f}×" in page


def test_the_models_manifest_is_typed_and_its_readers_check_its_version(models_dir):
    from handler.artifacts import ModelLoadError, fetch_verified
    from handler.manifest import ManifestError, parse, read

    text = (models_dir / "manifest.json").read_text()
    manifest = read(models_dir / "manifest.json")
    assert json.loads(manifest.to_json()) == json.loads(text)  # written by it, read back unchanged
    assert manifest.artifacts["logit.json"].bytes == (models_dir / "logit.json").stat().st_size
    future = json.dumps({**json.loads(text), "schema_version": 3})
    with pytest.raises(ManifestError, match="schema_version 3 is not supported"):
        parse(future, "m.json")
    (models_dir.parent / "future").mkdir(exist_ok=True)
    copy_dir = models_dir.parent / "future"
    (copy_dir / "logit.json").write_bytes((models_dir / "logit.json").read_bytes())
    (copy_dir / "manifest.json").write_text(future)
    with pytest.raises(ModelLoadError, match="schema_version 3"):  # the handler refuses it too
        fetch_verified(str(copy_dir / "logit.json"))
