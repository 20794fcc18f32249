"""Every command in the README works as written: the ones that take under a minute run here,
word for word, in a folder laid out as the README assumes; each longer one is run by the test
named beside it. A command added to the README without either fails this file."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, run_command

README = PROJECT_ROOT / "README.md"

# Longer commands (over a minute, or a whole install) and the test that runs each.
SLEEPY = "examples/sleepy"
COMPARE = "python -m bench.compare /tmp/baseline-run -- /tmp/candidate-run"
RECIPE = "docs/compare.md (a CI recipe; its steps run in tests/test_compare_slow.py)"
RUN_ELSEWHERE = {
    "python -m bench": "tests/test_reports.py (--quick, from another directory)",
    "python -m pytest": ".ci/run",
    "python -m bench --quick --model my_model.joblib --sample sample.csv": "tests/test_model_pipeline.py",
    f"python -m bench --quick --config {SLEEPY}/emulator.toml --requests {SLEEPY}/requests.jsonl": (
        "tests/test_requests_file.py::test_the_main_job_on_a_function_that_is_no_model"
    ),
    "git worktree add /tmp/baseline origin/main": RECIPE,
    "(cd /tmp/baseline": RECIPE,
    "python -m bench --runs 3 --out /tmp/baseline-run)": "tests/test_compare_slow.py",
    "python -m bench --runs 3 --out /tmp/candidate-run": "tests/test_compare_slow.py",
    f"{COMPARE} --fail-on-regression 10% --junit compare.xml": "tests/test_compare_slow.py",
}
SETUP = (". .venv", "python3 -m venv", "pip install")  # the install steps: .ci/run does them
RUN_HERE = {"python -m training --model my_model.joblib --sample sample.csv --out models-mine"}
TWO = "staging/spin-main staging/spin-pr"
SIDE_BY_SIDE = (  # run here, in order, word for word
    "python -m bench.sidebyside --config examples/two-versions/emulator.toml "
    f"{TWO} --out results/two-versions",
    f'python -m bench.compare results/two-versions --side-by-side {TWO} --figure "in-handler p50" '
    "--fail-on-regression 5%",
)


def readme_commands() -> list[str]:
    """Each command of the README's ``bash`` blocks (``&&`` chains split, comments dropped)."""
    commands, inside = [], False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside and line.strip():
            for part in line.split("#", 1)[0].split("&&"):
                if part.strip() and not part.strip().startswith(
                    (". .venv", "python3 -m venv", "pip install")
                ):
                    commands.append(" ".join(part.split()))
    return commands


def test_every_readme_command_is_run_by_a_test():
    commands = readme_commands()
    assert commands, "no command found in the README"
    known = {*RUN_ELSEWHERE, *RUN_HERE, *SIDE_BY_SIDE}
    unknown = [command for command in commands if command not in known]
    assert unknown == [], f"README commands no test runs: {unknown}"
    for where in RUN_ELSEWHERE.values():
        path = where.split(" ", 1)[0].split("::", 1)[0]
        assert (PROJECT_ROOT / path).exists(), f"{path} (named for a README command) does not exist"


@pytest.mark.slow
def test_the_readme_s_own_model_command_works_as_written(tmp_path: Path):
    """``python -m training --model my_model.joblib --sample sample.csv --out models-mine``, word
    for word, beside a user's forest saved with joblib and a sample of its inputs."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(frame, data.target)
    joblib.dump(model, tmp_path / "my_model.joblib")
    frame.head(200).to_csv(tmp_path / "sample.csv", index=False)
    (command,) = RUN_HERE
    completed = run_command([sys.executable, *shlex.split(command)[1:]], cwd=tmp_path, timeout=300)
    assert completed.returncode == 0, completed.stderr
    written = {path.name for path in (tmp_path / "models-mine").iterdir()}
    assert {"manifest.json", "requests.jsonl", "reference.joblib", "model.onnx"} <= written, written


@pytest.mark.slow
def test_the_readme_s_side_by_side_commands_catch_the_example_s_slower_version(tmp_path: Path):
    """The two commands of "Is my new version slower?", word for word, from a folder holding the
    project's ``examples/``: three runs of both versions, then exit 1 naming the regression
    (``spin-pr`` does twice ``spin-main``'s work: far above the 5 % threshold and the 1.10x by
    which one environment was seen to differ from another here, docs/benchmarks.md)."""
    (tmp_path / "examples").symlink_to(PROJECT_ROOT / "examples")
    measure, compare = ([sys.executable, *shlex.split(command)[1:]] for command in SIDE_BY_SIDE)
    measured = run_command(measure, cwd=tmp_path, timeout=300)
    assert measured.returncode == 0, measured.stdout[-2000:] + measured.stderr[-2000:]
    assert len(list((tmp_path / "results" / "two-versions").glob("locust-side-by-side-*.json"))) == 3
    compared = run_command(compare, cwd=tmp_path)
    assert compared.returncode == 1, compared.stdout + compared.stderr
    assert "paired run by run (side by side)" in compared.stdout
    assert "in-handler p50" in compared.stdout and "slower (significant)" in compared.stdout
