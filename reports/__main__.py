"""``python -m reports RESULTS.json... [-o DIR]``: charts and an HTML page from results files.

Reads results JSON written by ``bench`` (any mix of kinds; two or more of one kind are
overlaid and compared, the first as the baseline); never runs a benchmark. Writes the PNG
charts and ``DIR/index.html`` (self-contained), each through a temporary file and a rename.
``--check-browser`` then renders the page in headless Chromium, saves ``screenshot.png`` and
fails (exit 1) unless every image loaded. A file that is not a results document, or of an
unknown kind or schema version: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.results import ResultsError, write_atomic
from reports.browser import BrowserError, check_page
from reports.charts import CHARTS
from reports.page import render
from reports.runs import Run, load_runs, ratios


@dataclass(frozen=True)
class ReportConfig:
    results: tuple[Path, ...]
    out_dir: Path
    check_browser: bool


def build_report(runs: list[Run], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = []
    for file_name, title, draw in CHARTS:
        path = draw(runs, out_dir / file_name)
        if path is not None:
            charts.append((title, path))
    index = out_dir / "index.html"
    write_atomic(index, render(runs, charts, ratios(runs)).encode("utf-8"))
    return index


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results JSON files written by bench")
    parser.add_argument("-o", "--out", type=Path, default=Path("results/report"), help="output directory")
    parser.add_argument(
        "--check-browser",
        action="store_true",
        help="render in headless Chromium; exit 1 unless every image loads",
    )
    return parser


def run(config: ReportConfig) -> int:
    try:
        runs = load_runs(list(config.results))
    except ResultsError as exc:
        print(f"python -m reports: {exc}", file=sys.stderr)
        return 2
    index = build_report(runs, config.out_dir)
    print(f"report: {index}")
    if not config.check_browser:
        return 0
    try:
        check = check_page(index, config.out_dir / "screenshot.png")
    except BrowserError as exc:
        print(f"python -m reports: browser check: {exc}", file=sys.stderr)
        return 2
    print(f"browser: {check.images_loaded}/{check.images_total} images loaded; screenshot {check.screenshot}")
    return 0 if check.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(ReportConfig(tuple(args.results), args.out, args.check_browser))


if __name__ == "__main__":
    sys.exit(main())
