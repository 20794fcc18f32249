"""``python -m bench.sidebyside``: both versions under the same Locust runs, through a real
emulator, then the ``bench.compare`` command it prints, run as printed.

The spin function reports its handler's thread CPU time (``SPIN_TIMING=cpu``) and the
candidate does three times the work: the test checks the machinery (both functions in every
run, paired run by run, the regression named), not this machine's speed; the 15 % case is
``docs/scripts/compare_fidelity.py --side-by-side``'s, with its counts in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.sidebyside import main
from tests.conftest import PROJECT_ROOT, run_command, run_module

SPIN_DIR = PROJECT_ROOT / "bench" / "compare" / "spinfunction"


def two_versions(path: Path, slower: float = 3.0) -> Path:
    text = 'stage = "staging"\nport = 0\n'
    for name, iterations in (("spin-base", 20_000), ("spin-new", round(20_000 * slower))):
        text += (
            f'\n[[functions]]\nname = "{name}"\nhandler = "spin.handler"\ncode_dir = "{SPIN_DIR}"\n'
            f'memory_mb = 1769\n\n[functions.env]\nSPIN_ITERATIONS = "{iterations}"\nSPIN_TIMING = "cpu"\n'
        )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["staging/spin-base", "staging/spin-base"], "are the same function"),
        (["spin-base", "staging/spin-new"], "a function is STAGE/NAME"),
        (["staging/spin-base", "staging/spin-gone"], "has no function staging/spin-gone"),
        (["staging/spin-base", "staging/spin-new", "--runs", "0"], "must be at least 1"),
        (["staging/spin-base", "staging/spin-new:3"], "a function is STAGE/NAME"),  # Locust's weight syntax
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    config = two_versions(tmp_path / "both.toml")
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--config", str(config), "--out", str(tmp_path / "runs")])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written


def test_earlier_runs_in_out_an_event_requests_file_or_a_host_without_scheme_are_bad_input(tmp_path, capsys):
    config, out = two_versions(tmp_path / "both.toml"), tmp_path / "runs"
    out.mkdir()
    earlier = out / "locust-side-by-side-4.json"
    earlier.write_text("{}", encoding="utf-8")
    functions = ["staging/spin-base", "staging/spin-new"]
    with pytest.raises(SystemExit) as exited:  # bench.compare would pair them with the new runs
        main([*functions, "--config", str(config), "--out", str(out)])
    assert (
        exited.value.code == 2
        and "already holds results files (locust-side-by-side-4.json" in capsys.readouterr().err
    )
    assert earlier.read_text(encoding="utf-8") == "{}"
    events = tmp_path / "events.jsonl"
    events.write_text('{"event": {"ms": 1}}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main([*functions, "--config", str(config), "--requests", str(events), "--out", str(tmp_path / "e")])
    assert (
        exited.value.code == 2
        and "an 'event' line is for a directly invoked function" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as exited:
        main([*functions, "--host", "127.0.0.1:3000"])
    assert exited.value.code == 2 and "not an http(s) URL" in capsys.readouterr().err


def test_neither_config_nor_host_is_bad_input(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["staging/a", "staging/b"])
    assert exited.value.code == 2 and "--config" in capsys.readouterr().err


@pytest.mark.slow
def test_both_versions_in_every_run_and_the_printed_comparison_names_the_regression(tmp_path):
    config, runs = two_versions(tmp_path / "both.toml"), tmp_path / "runs"
    completed = run_module(
        "bench.sidebyside", "--config", str(config), "staging/spin-base", "staging/spin-new",
        "--runs", "3", "--seconds", "3", "--rate", "20", "--out", str(runs), cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    for run in (1, 2, 3):
        document = json.loads((runs / f"locust-side-by-side-{run}.json").read_text(encoding="utf-8"))
        endpoints = document["endpoints"]
        assert set(endpoints) == {"staging/spin-base", "staging/spin-new"}
        counts = [endpoints[name]["handler_us"]["count"] for name in sorted(endpoints)]
        assert all(count >= 20 for count in counts), counts  # about 60 each: both were sent to
    printed = completed.stdout.strip().splitlines()[-1].strip()
    assert shlex.split(printed)[1:3] == ["-m", "bench.compare"], printed
    assert "--side-by-side staging/spin-base staging/spin-new" in printed
    junit, results = tmp_path / "compare.xml", tmp_path / "compare.json"
    command = [*shlex.split(printed), "--junit", str(junit), "--results", str(results)]
    compared = run_command(command, cwd=tmp_path)
    assert compared.returncode == 1, compared.stdout + compared.stderr
    assert "paired run by run (side by side)" in compared.stdout
    assert "3 vs 3 runs" in compared.stdout
    failures = [
        case.get("name")
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.find("failure") is not None
    ]
    assert failures == ["in-handler p50"]


def test_a_host_that_does_not_answer_is_one_line_and_exit_1(tmp_path, capsys):
    """``--host``: no emulator is started; a URL where nothing listens fails the warm-up."""
    import socket

    with socket.socket() as sock:  # a loopback port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(
        ["staging/a", "staging/b", "--host", f"http://127.0.0.1:{port}", "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert code == 1 and "warm-up a" in err and f"127.0.0.1:{port}/staging/a" in err
    assert not list((tmp_path / "r").glob("*.json"))


def test_fewer_than_three_runs_are_measured_with_a_warning(tmp_path, capsys, monkeypatch):
    from bench.sidebyside import parse

    config = two_versions(tmp_path / "both.toml")
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them
    plan = parse(
        ["staging/spin-base", "staging/spin-new", "--config", "both.toml", "--runs", "2", "--out", "r"]
    )
    assert plan.runs == 2 and "needs at least 3 to judge (exit 3)" in capsys.readouterr().err
    assert plan.config == config.resolve() and plan.out == (tmp_path / "r").resolve()  # made absolute


def test_the_printed_figure_is_end_to_end_when_a_handler_sends_no_server_timing(tmp_path):
    """A function that reports no handler time (no ``Server-Timing``, as ``examples/sleepy``):
    the printed comparison gates on the end-to-end p50, which every run has."""
    import copy

    from bench.sidebyside import SideBySide

    golden = json.loads((PROJECT_ROOT / "tests" / "golden" / "locust-v3.json").read_text(encoding="utf-8"))
    (endpoint,) = golden["endpoints"].values()
    plan = SideBySide(("staging/a", "staging/b"), tmp_path, runs=3)
    for timed in (True, False):
        for run in (1, 2, 3):
            document = copy.deepcopy(golden)
            document["endpoints"] = {
                "staging/a": copy.deepcopy(endpoint),
                "staging/b": copy.deepcopy(endpoint),
            }
            if not timed and run == 2:
                document["endpoints"]["staging/b"]["handler_us"]["count"] = 0
            plan.run_file(run).write_text(json.dumps(document), encoding="utf-8")
        expected = "in-handler p50" if timed else "end-to-end p50"
        assert plan.figure() == expected
        assert f"--figure '{expected}'" in plan.compare_command(plan.figure())
