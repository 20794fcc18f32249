"""One ``python -m bench.powertune`` run: where the Lambda API is, the sweep, the results file.

Local mode (no ``--lambda-endpoint``): the emulator is started here (``bench.process``, its
logs beside the results) with the functions asked for, and stopped at the end whatever
happens. Its resource model is read first (``bench.target``): a sweep under the host model
(no CPU share by memory size) cannot show what memory buys, so it stops with exit 2 unless
``--allow-host-model``; the same check applies to any emulator given as ``--lambda-endpoint``.
``--lambda-endpoint aws``: AWS itself, boto3's own configuration. Results are written
atomically; an interrupted run's go to ``<name>.partial.json``, never over a complete one.
Exit codes: the recommended sizes' verdicts (0 PASS, 1 FAIL, 3 INVALID), 1 for a Lambda API
error, 2 for bad input, 130 on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.machine import collect_metadata
from bench.powertune.calibrate import calibrate, calibration_line, write_function
from bench.powertune.config import PowertuneConfig
from bench.powertune.session import Interrupted, interruptible
from bench.powertune.sweep import STOPS, run_status, sweep_function
from bench.process import ChildError, running_emulator
from bench.results import EXIT_CODES, PROJECT_ROOT, utc_stamp, write_json_atomic
from bench.results.gate import INVALID
from bench.results.powertune import Calibration, FunctionSweep, PowertuneRun
from bench.target import AWS, resource_model

EXIT_INTERRUPTED, EXIT_API_ERROR, EXIT_USAGE = 130, 1, 2
CALIBRATION_TRIALS = 10  # as lambda-perf


class UsageError(ValueError):
    """The run cannot go ahead as asked (one line, exit 2)."""


def echo(line: str) -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def host_model_refusal(model: dict, allow: bool) -> str | None:
    """Why a sweep against ``model`` would not show CPU scaling, or None when it can go ahead."""
    if allow or model.get("kind") != "host":
        return None
    return (
        f"the emulator runs the host resource model ({model.get('reason', 'limits not enforced')}): "
        "every memory size would get the whole host CPU, so the sweep cannot show what memory buys; "
        "run it where cgroups work (Linux, as root), or pass --allow-host-model to sweep anyway"
    )


def check_local(config: PowertuneConfig) -> None:
    """Local mode: the functions exist in the emulator's configuration (``--config``) and the
    models are there (when a function loads one)."""
    from bench.functions import FunctionsError, load, needs_models

    try:
        emulator = load(config.emulator_config)
    except FunctionsError as exc:
        raise UsageError(str(exc)) from None
    known = {function.name: function for function in emulator.functions}
    where = "the emulator" if config.emulator_config is None else str(config.emulator_config)
    for name in config.functions:
        if name not in known:
            raise UsageError(f"--functions: unknown function {name!r} ({where} has {', '.join(known)})")
        if not known[name].available():
            raise UsageError(f"--functions: {name!r} needs {', '.join(known[name].requires)}, not installed")
    models = config.models or PROJECT_ROOT / "models"
    if not needs_models(config.emulator_config, config.functions):
        return
    if not (models / "manifest.json").is_file():
        raise UsageError(f"no trained models in {models}: run python -m training first (or pass --models)")


@dataclass(frozen=True)
class Target:
    """Where the Lambda API is: its URL (None: AWS) and the resource model behind it."""

    endpoint: str | None
    model: dict


@contextlib.contextmanager
def lambda_api(config: PowertuneConfig, log_dir: Path, *extra: str) -> Iterator[Target]:
    """The emulator for the ``with`` block (local mode), or the endpoint given."""
    if config.aws:
        yield Target(None, AWS)
        return
    if config.lambda_endpoint is not None:
        yield Target(config.lambda_endpoint, resource_model(config.lambda_endpoint))
        return
    models = config.models.resolve() if config.models is not None else None
    with running_emulator(models, log_dir, *extra) as emulator:
        yield Target(emulator.base_url, resource_model(emulator.base_url))


def lambda_client(endpoint: str | None, region: str | None):
    from botocore.config import Config

    from handler.aws.clients import client

    return client("lambda", endpoint, region, config=Config(retries={"total_max_attempts": 1}))


def results_path(config: PowertuneConfig) -> Path:
    return config.results or Path("results") / f"powertune-{utc_stamp()}.json"


def partial_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.partial.json")


def run_calibration(config: PowertuneConfig, log_dir: Path) -> tuple[Calibration, dict]:
    """lambda-perf's function in an emulator of its own (:mod:`bench.powertune.calibrate`);
    returns the calibration and the emulator's resource model."""
    if not config.local:
        raise UsageError("--calibrate runs in the local emulator: omit --lambda-endpoint")
    emulator_config = write_function(log_dir / "calibration")
    with lambda_api(config, log_dir / "calibration", "--config", str(emulator_config)) as target:
        refusal = host_model_refusal(target.model, config.allow_host_model)
        if refusal:
            raise UsageError(refusal)
        client = lambda_client(target.endpoint, config.region)
        return calibrate(client, CALIBRATION_TRIALS), target.model


def run(config: PowertuneConfig, argv: list[str] | None = None) -> int:
    """The whole run; returns the exit code."""
    from botocore.exceptions import BotoCoreError, ClientError

    results = results_path(config)
    log_dir = results.parent / f"{results.stem}-logs"
    try:
        with interruptible():
            return _run(config, results, log_dir, argv)
    except UsageError as exc:
        warn(f"python -m bench.powertune: {exc}")
        return EXIT_USAGE
    except (ChildError, RuntimeError) as exc:  # no emulator; a calibration without a cold start
        warn(f"python -m bench.powertune: {exc}")
        return EXIT_API_ERROR
    except (BotoCoreError, ClientError) as exc:  # outside a sweep (which restores and reports its own)
        warn(f"python -m bench.powertune: Lambda API error: {exc}")
        return EXIT_API_ERROR
    except STOPS:
        warn("python -m bench.powertune: interrupted")
        return EXIT_INTERRUPTED


def _run(config: PowertuneConfig, results: Path, log_dir: Path, argv: list[str] | None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    if config.calibrate:  # the calibration alone: no sweep
        calibration, model = run_calibration(config, log_dir)
        echo(calibration_line(calibration))
        return _write(config, results, [], calibration, model, argv, None)
    if config.local:
        check_local(config)
    functions: list[FunctionSweep] = []
    stopped: BaseException | None = None
    extra = ("--functions", ",".join(config.functions)) if config.local else ()
    if config.local and config.emulator_config is not None:
        extra = ("--config", str(config.emulator_config), *extra)
    with lambda_api(config, log_dir, *extra) as target:
        refusal = host_model_refusal(target.model, config.allow_host_model)
        if refusal:
            raise UsageError(refusal)
        client = lambda_client(target.endpoint, config.region)
        for function in config.functions:
            try:
                sweep, stopped = sweep_function(client, function, config, echo, warn)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "ResourceNotFoundException" and not functions:
                    raise UsageError(f"--functions: {function!r}: no such function ({exc})") from None
                stopped = exc
                break
            except BotoCoreError as exc:
                stopped = exc
                break
            functions.append(sweep)
            if stopped is not None:
                break
        return _write(config, results, functions, None, target.model, argv, stopped)


def _write(
    config: PowertuneConfig,
    results: Path,
    functions: list[FunctionSweep],
    calibration: Calibration | None,
    model: dict,
    argv: list[str] | None,
    stopped: BaseException | None,
) -> int:
    partial = stopped is not None
    document = PowertuneRun(
        metadata=collect_metadata(config.options(), argv=argv, resource_model=model),
        partial=partial,
        lambda_endpoint=None if config.aws else config.lambda_endpoint,
        target_us=config.target_ms * 1_000,
        percentile=config.percentile,
        strategy=config.strategy,
        balanced_weight=config.balanced_weight,
        cold_fraction=config.cold_fraction,
        functions=functions,
        calibration=calibration,
        status=run_status(functions) if functions else INVALID,
    )
    path = partial_path(results) if partial else results
    write_json_atomic(path, document)
    for function in functions:
        chosen = next(r for r in function.recommendations if r.strategy == config.strategy)
        echo(f"{function.function} {function.status}: {chosen.message}")
        for other in function.recommendations:
            if other.strategy != config.strategy:
                echo(f"  {other.message}")
        theirs = next(r for r in function.powertuning_recommendations if r.strategy == config.strategy)
        echo(f"  {theirs.message}")
    echo(f"results: {path}")
    if isinstance(stopped, (*STOPS, Interrupted)):
        warn(f"python -m bench.powertune: interrupted ({stopped or 'SIGINT'}); partial results: {path}")
        return EXIT_INTERRUPTED
    if stopped is not None:
        warn(f"python -m bench.powertune: Lambda API error: {stopped}")
        return EXIT_API_ERROR
    if not functions:
        return 0
    return EXIT_CODES[document.status]


__all__ = ["UsageError", "host_model_refusal", "run"]
