"""``python -m bench.compare BASELINE… -- NEW…``: is the new version slower?

``python -m bench.compare RUN… --side-by-side BASELINE_FUNCTION NEW_FUNCTION``: the same
question of runs that measured both versions together (two functions under one load run).

Results files or run folders (``results/run-<UTC>/``), one or more runs per side; runs are
paired like with like (same kind, function, scenario and load). Per pair and figure: both
values, the ratio new/baseline, and its confidence interval over the runs (at least 3 per
side; see ``bench/compare/stats.py`` for the method). Writes a ``compare`` results document.

Exit codes: 0; with ``--fail-on-regression PCT``: 1 when some figure's whole interval lies above
1 + PCT, 3 when it cannot judge (fewer than 3 runs per side, or identical runs on each side); 2
for bad input (an unreadable file, nothing to pair) or an output that cannot be written
(``cannot write PATH: reason``), with one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.compare.engine import compare, read_side
from bench.compare.outputs import console, junit, markdown
from bench.compare.stats import FAMILY_CONFIDENCE
from bench.machine import collect_metadata
from bench.results import EXIT_CODES, ResultsError, utc_stamp, write_atomic, write_json_atomic

PROG = "python -m bench.compare"


def percentage(text: str) -> float:
    """``10%`` or ``10`` → 0.10."""
    try:
        amount = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r} (e.g. 10%)") from None
    if not 0 <= amount < 1000:
        raise argparse.ArgumentTypeError(f"a percentage in [0, 1000), not {text!r}")
    return amount / 100


def confidence(text: str) -> float:
    try:
        amount = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.5 <= amount < 1:
        raise argparse.ArgumentTypeError(f"a confidence in [0.5, 1), not {text!r}")
    return amount


@dataclass(frozen=True)
class CompareConfig:
    baseline: tuple[Path, ...]
    new: tuple[Path, ...]
    fail_on_regression: float | None
    junit: Path | None
    markdown: Path | None
    results: Path
    family_confidence: float
    side_by_side: tuple[str, ...] | None = None  # (baseline function, new function)
    figures: tuple[str, ...] = ()  # --figure: only these


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # "--side" must not pass for --side-by-side: parse() looks for it
    )
    parser.add_argument("paths", nargs="*", type=Path, help="results files or run folders")
    parser.add_argument(
        "--fail-on-regression",
        type=percentage,
        metavar="PCT",
        help="exit 1 when a figure's whole interval on new/baseline lies above 1 + PCT (e.g. 10%%)",
    )
    parser.add_argument("--junit", type=Path, help="write JUnit XML: a test case per pair and figure")
    parser.add_argument("--markdown", type=Path, help="write a Markdown table (a pull-request comment)")
    parser.add_argument(
        "--results", type=Path, help="the compare document (default results/compare-<UTC>.json)"
    )
    parser.add_argument(
        "--side-by-side",
        nargs=2,
        metavar=("BASELINE_FUNCTION", "NEW_FUNCTION"),
        help="runs that measured both functions together (one load run against both): pair run i "
        "of one with run i of the other; give the runs without --",
    )
    parser.add_argument(
        "--figure",
        action="append",
        default=[],
        metavar="NAME",
        help="compare only this figure (repeatable; e.g. 'in-handler p50'): the false-alarm rate is "
        "then shared by the figures you gate on only",
    )
    parser.add_argument(
        "--confidence",
        type=confidence,
        default=FAMILY_CONFIDENCE,
        help="the family confidence of all the intervals together (default 0.95)",
    )
    return parser


def parse(argv: list[str]) -> CompareConfig:
    parser = build_parser()
    if "--side-by-side" in argv:
        if "--" in argv:
            parser.error("--side-by-side takes the runs that hold both functions, without --")
        given = parser.parse_intermixed_args(argv)
        if not given.paths:
            parser.error("give the runs that hold both functions (results files or run folders)")
        return CompareConfig(
            baseline=tuple(given.paths),
            new=tuple(given.paths),
            fail_on_regression=given.fail_on_regression,
            junit=given.junit,
            markdown=given.markdown,
            results=given.results or Path("results") / f"compare-{utc_stamp()}.json",
            family_confidence=given.confidence,
            side_by_side=tuple(given.side_by_side),
            figures=tuple(dict.fromkeys(given.figure)),
        )
    if "--" not in argv:
        parser.error("separate the baseline from the new runs with --: BASELINE… -- NEW…")
    split = argv.index("--")
    left = parser.parse_intermixed_args(argv[:split])
    right = parser.parse_intermixed_args(argv[split + 1 :])
    defaults = parser.parse_args([])
    merged = {
        name: getattr(right, name) if getattr(right, name) != getattr(defaults, name) else getattr(left, name)
        for name in vars(defaults)
    }
    if not left.paths or not right.paths:
        parser.error("give at least one results file or run folder on each side of --")
    return CompareConfig(
        baseline=tuple(left.paths),
        new=tuple(right.paths),
        fail_on_regression=merged["fail_on_regression"],
        junit=merged["junit"],
        markdown=merged["markdown"],
        results=merged["results"] or Path("results") / f"compare-{utc_stamp()}.json",
        family_confidence=merged["confidence"],
        figures=tuple(dict.fromkeys(left.figure + right.figure)),
    )


def run(config: CompareConfig, argv: list[str]) -> int:
    try:
        baseline, new = read_side(list(config.baseline)), read_side(list(config.new))
        options = {
            "fail_on_regression": config.fail_on_regression,
            "confidence": config.family_confidence,
            "junit": str(config.junit) if config.junit else None,
            "markdown": str(config.markdown) if config.markdown else None,
            "side_by_side": list(config.side_by_side) if config.side_by_side else None,
            "figures": list(config.figures),
        }
        document = compare(
            baseline,
            new,
            collect_metadata(options, argv=[PROG, *argv]),
            ([str(p) for p in config.baseline], [str(p) for p in config.new]),
            config.fail_on_regression,
            config.family_confidence,
            (config.side_by_side[0], config.side_by_side[1]) if config.side_by_side else None,
            config.figures,
        )
    except ResultsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    say(console(document))
    outputs = [(config.results, lambda path: write_json_atomic(path, document))]
    if config.junit is not None:
        outputs.append((config.junit, lambda path: write_atomic(path, junit(document))))
    if config.markdown is not None:
        outputs.append((config.markdown, lambda path: write_atomic(path, markdown(document).encode("utf-8"))))
    for path, write in outputs:
        try:
            write(path)
        except OSError as exc:  # permission denied, a folder given as the path, a full disk
            print(f"{PROG}: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        if path == config.results:
            say(f"results: {config.results}")
    return EXIT_CODES[document.status] if config.fail_on_regression is not None else 0


def say(text: str) -> None:
    """Print to stdout. A reader that has gone away (``… | head -3``) costs the console only:
    the files are still written and the exit code is still the verdict (the recipe of Python's
    ``signal`` docs, "Note on SIGPIPE": point stdout at devnull)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return run(parse(args), args)


if __name__ == "__main__":
    sys.exit(main())
