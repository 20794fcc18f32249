"""The results schema against golden files: a renamed, missing or retyped field fails here, in seconds.

``tests/golden/<kind>-v<N>.json`` is a real document of each kind and version, written by the
tool that produces it (small runs). Each must be read by ``bench.results`` and written back
unchanged, and ``reports`` must render it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import typing
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
    data = _golden(GOLDEN / "locust-v3.json")
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


# -- init figures: one name, one meaning ------------------------------------------------------
OLDER = GOLDEN / "older"
# what each kind's older version called an init figure, written out here apart from the
# readers' own mapping (bench.results' ``upgrade``)
INIT_RENAMES = {
    "coldstart": {"init_us": "start_to_ready_us"},
    "coldstart-endpoint": {"init_us": "init_duration_us"},
    "coldstart-cloudwatch": {"init_us": "init_duration_us"},
    "powertune": {"init_us": "init_duration_us", "init_mean_us": "init_duration_mean_us"},
}
# fields a newer version added, and what an older file reads as
ADDED = {"compare": {"side_by_side": False}}
ADDED_IN = {  # the same, in the records of a list
    "fidelity": {"throttling": {"unthrottled_after_us": None}, "stability": {"reference_us": []}},
}
UPGRADED = {"coldstart", "coldstart-endpoint", "coldstart-cloudwatch", "powertune", "compare"}


def _renamed_everywhere(value, renames: dict[str, str]):
    if isinstance(value, dict):
        return {renames.get(key, key): _renamed_everywhere(item, renames) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed_everywhere(item, renames) for item in value]
    return value


@pytest.mark.parametrize("path", sorted(OLDER.glob("*.json")), ids=lambda path: path.stem)
def test_an_older_version_reads_as_the_current_one_with_its_init_fields_renamed(path):
    data = _golden(path)
    cls = KINDS[data["kind"]]
    assert data["schema_version"] in cls.READS_OLDER and data["schema_version"] != cls.SCHEMA_VERSION
    expected = _renamed_everywhere(data, INIT_RENAMES.get(data["kind"], {}))
    expected["schema_version"] = cls.SCHEMA_VERSION
    expected |= ADDED.get(data["kind"], {})
    for field_name, added in ADDED_IN.get(data["kind"], {}).items():
        expected[field_name] = [item | added for item in expected[field_name]]
    assert read_document(path).to_dict() == expected  # the same figures, under their new names
    if data["kind"] in UPGRADED:  # the current golden file is this one read and written back
        assert expected == _golden(GOLDEN / f"{cls.KIND}-v{cls.SCHEMA_VERSION}.json")


def test_the_powertune_calibration_reads_its_older_names():
    data = _golden(OLDER / "powertune-v2.json")
    series = data["functions"][0]["sizes"][-1]["init_us"]
    data["calibration"] = {
        "function": "hello-world", "memory_mb": 128, "trials": 2, "init_us": series,
        "init_mean_us": 90_000.0, "reference_mean_ms": 94.936, "reference_min_ms": 86.3,
        "reference_max_ms": 108.53, "reference_trials": 10, "reference_runtime": "python3.12",
        "reference_date": "2025-12-21", "reference_source": "lambda-perf", "ratio": 0.948,
    }  # fmt: skip
    calibration = document_from_dict(data, "v2").calibration
    assert calibration.init_duration_mean_us == 90_000.0 and calibration.init_duration_us.to_dict() == series


def test_locust_version_2_is_refused_its_init_series_mixed_two_figures():
    data = {**_golden(GOLDEN / "locust-v3.json"), "schema_version": 2}
    with pytest.raises(ResultsError, match="locust schema_version 2 is not supported"):
        document_from_dict(data, "x")


def _record_fields() -> dict[str, set[str]]:
    """Every field name of every record reachable from a results kind → the records holding it."""
    seen: set[type] = set()
    names: dict[str, set[str]] = {}

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            names.setdefault(field.name, set()).add(cls.__name__)
            stack = [hints[field.name]]
            while stack:
                hint = stack.pop()
                if isinstance(hint, type) and dataclasses.is_dataclass(hint):
                    walk(hint)
                stack.extend(typing.get_args(hint))

    for cls in KINDS.values():
        walk(cls)
    return names


def _documented_init_names() -> set[str]:
    """The names in docs/results.md's "Init figures" table (its first column)."""
    text = (GOLDEN.parent.parent / "docs" / "results.md").read_text(encoding="utf-8")
    section = text.split("## Init figures", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {row.split("`")[1] for row in rows}


def test_every_init_field_is_in_the_documented_vocabulary_and_none_is_a_bare_init_us():
    fields = _record_fields()
    assert "init_us" not in fields, f"a bare init_us in {fields.get('init_us')}: name what it measures"
    documented = _documented_init_names()
    init_like = {name for name in fields if re.match(r"init_|.*init_[mun]?s$", name)}
    assert init_like - documented == set(), "init fields missing from docs/results.md, 'Init figures'"
    assert documented - set(fields) == set(), "docs/results.md names init fields no kind has"
    assert {"init_duration_us", "handler_init_us", "start_to_ready_us", "init_cpu_us"} <= documented
