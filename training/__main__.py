"""``python -m training``: the tutorial's model, a table's logistic regression, or a user's model.

- no arguments / ``--data CSV``: the tutorial's LogisticRegression on G1..G10 (synthetic, or the
  tutorial's CSV, strictly checked), written as ``logit.*``;
- ``--data CSV --label COL``: the same kind of model on any numeric columns, written as a user
  model (``reference.joblib``, ``model.*``);
- ``--model FILE --sample CSV``: the user's own fitted estimator (see ``training.user_model``).
Bad input: one line on stderr, exit code 2, nothing written over the previous output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training import requests_file
from training.data import DataError, load_csv, synthetic
from training.layout import RequestPlan
from training.load import PREAMBLE, ModelFileError, sha256_bytes
from training.train import SOLVERS, TrainConfig, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Write a model in every serialization that applies, with its manifest and requests.",
    )
    parser.add_argument(
        "--data",
        metavar="PATH_OR_URL",
        help="training CSV: G1..G10,label (the tutorial's; default: seeded synthetic data), "
        "or any numeric columns with --label",
    )
    parser.add_argument("--model", type=Path, metavar="FILE", help="your fitted estimator file")
    parser.add_argument("--sample", type=Path, metavar="CSV", help="a sample of its inputs (with --model)")
    parser.add_argument("--label", metavar="COL", help="the label column (dropped from --sample; --data's)")
    parser.add_argument(
        "--code-dir", type=Path, metavar="DIR", help="your own modules the model needs (shipped with it)"
    )
    parser.add_argument("--solver", choices=SOLVERS, default="liblinear")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data, split and request-drawing seed")
    parser.add_argument(
        "--requests-count",
        type=int,
        default=requests_file.DEFAULT_COUNT,
        metavar="N",
        help=f"requests.jsonl lines, drawn from whole rows (default {requests_file.DEFAULT_COUNT})",
    )
    parser.add_argument("--out", type=Path, default=Path("models"), help="output directory")
    return parser


def _check_combination(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.model is not None and args.sample is None:
        parser.error("--model needs --sample CSV (a sample of its inputs)")
    if args.sample is not None and args.model is None:
        parser.error("--sample goes with --model FILE")
    if args.model is not None and args.data is not None:
        parser.error("--model and --data are alternatives: a model of yours, or one trained here")
    if args.code_dir is not None and args.model is None:
        parser.error("--code-dir goes with --model FILE")
    if args.label is not None and args.model is None and args.data is None:
        parser.error("--label goes with --data CSV or --model FILE --sample CSV")
    if args.requests_count < 1:
        parser.error(f"--requests-count must be at least 1, not {args.requests_count}")


def _print_layout(out_dir: Path, manifest: dict) -> None:
    width = max([24, *(len(str(out_dir / name)) for name in manifest["artifacts"])])
    for name, artifact in manifest["artifacts"].items():
        path = str(out_dir / name)
        tolerance = artifact.get("tolerance")
        bound = f"  tolerance {tolerance:.1e}" if tolerance is not None else ""
        print(f"  {path:<{width}} {artifact['bytes']:>8} B  sha256 {artifact['sha256'][:12]}{bound}")
    for fmt, reason in manifest.get("unavailable", {}).items():
        print(f"  no {fmt}: {reason}")
    memory = manifest.get("memory")
    if memory:
        print(
            f"  memory: peak RSS {memory['peak_rss_mb']} MB at load and first prediction; "
            f"memory size {memory['memory_size_mb']} MB ({memory['headroom']})"
        )
    requests = manifest.get("requests")
    if requests:
        print(f"  {out_dir / requests}: requests with expected answers")


def _user_model(args: argparse.Namespace, plan: RequestPlan) -> dict:
    from training.user_model import UserModelConfig, build

    try:
        digest = sha256_bytes(args.model.read_bytes())
    except OSError as exc:
        raise ModelFileError(f"cannot read {args.model}: {exc.strerror or exc}") from exc
    print(f"{PREAMBLE} {args.model} sha256 {digest}", flush=True)
    config = UserModelConfig(args.model, args.sample, args.out, args.label, args.code_dir, plan)
    manifest = build(config)
    task = manifest["task"]
    print(
        f"{manifest['model_class']} ({task['kind']}, {len(manifest['features'])} features) "
        f"checked on {manifest['sample']['rows']} sample rows"
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_combination(parser, args)
    plan = RequestPlan(count=args.requests_count, seed=args.seed)
    try:
        if args.model is not None:
            manifest = _user_model(args, plan)
        elif args.label is not None:
            from training.tabular import TabularConfig, build

            manifest = build(TabularConfig(args.data, args.label, args.out, args.solver, args.seed, plan))
        else:
            config = TrainConfig(out_dir=args.out, solver=args.solver, seed=args.seed, plan=plan)
            dataset = load_csv(args.data) if args.data else synthetic(seed=args.seed)
            manifest = train(dataset, config)
    except (DataError, ModelFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "metrics" in manifest and "holdout_accuracy" in manifest["metrics"]:
        metrics = manifest["metrics"]
        print(
            f"trained on {manifest['data']['source']} ({manifest['data']['rows']} rows): "
            f"held-out accuracy {metrics['holdout_accuracy']:.4f}, "
            f"ROC AUC {metrics['holdout_roc_auc']:.4f}"
        )
    _print_layout(args.out, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
