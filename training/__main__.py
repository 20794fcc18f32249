"""``python -m training``: fit the tutorial's model and write every artifact to ``models/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.data import DataError, load_csv, synthetic
from training.train import SOLVERS, TrainConfig, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the tutorial's LogisticRegression and write every serialization.",
    )
    parser.add_argument(
        "--data",
        metavar="PATH_OR_URL",
        help="CSV with header G1..G10,label (default: seeded synthetic data, same schema)",
    )
    parser.add_argument("--solver", choices=SOLVERS, default="liblinear")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data and split seed")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = TrainConfig(out_dir=args.out, solver=args.solver, seed=args.seed)
    try:
        dataset = load_csv(args.data) if args.data else synthetic(seed=args.seed)
        manifest = train(dataset, config)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = manifest["metrics"]
    print(
        f"trained on {manifest['data']['source']} ({manifest['data']['rows']} rows): "
        f"held-out accuracy {metrics['holdout_accuracy']:.4f}, "
        f"ROC AUC {metrics['holdout_roc_auc']:.4f}"
    )
    for name, artifact in manifest["artifacts"].items():
        path = str(config.out_dir / name)
        print(f"  {path:<24} {artifact['bytes']:>8} B  sha256 {artifact['sha256'][:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
