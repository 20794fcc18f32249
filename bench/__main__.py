"""``python -m bench``: the main job on embedded defaults, offline.

Today: train on the seeded synthetic data (or ``--data``), then the in-process benchmark of
every variant. Later stages (emulator, cold-start profile, Locust, report) join this pipeline
as they land.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import inprocess
from training.__main__ import main as train_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--data", help="training CSV (default: seeded synthetic data)")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--quick", action="store_true", help="fewer calls: a smoke run")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    train_args = ["--out", str(args.models)] + (["--data", args.data] if args.data else [])
    status = train_main(train_args)
    if status != 0:
        return status
    calls = ["--calls", "1000", "--warmup", "100"] if args.quick else []
    return inprocess.main(["--models", str(args.models), *calls])


if __name__ == "__main__":
    sys.exit(main())
