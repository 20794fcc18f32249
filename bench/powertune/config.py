"""The sweep's settings (one frozen dataclass) and the argument types that build them.

Bad input is an ``argparse.ArgumentTypeError`` that quotes the value; argparse turns it into
one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.powertune.strategy import DEFAULT_BALANCED_WEIGHT
from bench.verdict import Limits, Threshold

DEFAULT_FUNCTIONS = ("logitModel", "logit-lean")
DEFAULT_MEMORY = (128, 256, 512, 1024, 1769, 3008)
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10_240  # Lambda's range, in 1 MB steps
AWS_WORDS = ("aws", "AWS")


@dataclass(frozen=True)
class PowertuneConfig:
    functions: tuple[str, ...] = DEFAULT_FUNCTIONS
    memory_mb: tuple[int, ...] = DEFAULT_MEMORY
    cold_trials: int = 10
    warm: int = 1000
    target_ms: float = 1.0
    percentile: float = 99.0
    strategy: str = "cost"
    balanced_weight: float = DEFAULT_BALANCED_WEIGHT
    cold_fraction: float = 0.01
    max_error_rate: float = 0.001
    lambda_endpoint: str | None = None  # None: start the local emulator
    aws: bool = False  # the Lambda API of AWS itself (--lambda-endpoint aws)
    region: str | None = None
    allow_host_model: bool = False
    calibrate: bool = False  # lambda-perf's hello-world function instead of the sweep
    models: Path | None = None  # the local emulator's models directory
    results: Path | None = None
    progress: bool = True
    requests: Path | None = None  # --requests FILE: each Invoke's event drawn from it (bench.requests)
    emulator_config: Path | None = None  # --config FILE: the local emulator's configuration

    @property
    def local(self) -> bool:
        """The tool starts (and stops) the emulator itself."""
        return not self.aws and self.lambda_endpoint is None

    @property
    def threshold(self) -> Threshold:
        return Threshold(target_us=self.target_ms * 1_000, percentile=self.percentile)

    @property
    def limits(self) -> Limits:
        return Limits(max_error_rate=self.max_error_rate)

    def options(self) -> dict:
        """The settings as results record them (``metadata.options``)."""
        data = asdict(self)
        data["functions"], data["memory_mb"] = list(self.functions), list(self.memory_mb)
        data["models"] = None if self.models is None else str(self.models)
        data["results"] = None if self.results is None else str(self.results)
        data["requests"] = None if self.requests is None else str(self.requests)
        data["emulator_config"] = None if self.emulator_config is None else str(self.emulator_config)
        return data


def memory_sizes(text: str) -> tuple[int, ...]:
    """``128,256,1769``: whole MB in Lambda's 128–10,240 range, no repeats, in the order given."""
    sizes: list[int] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part.isdigit():
            raise argparse.ArgumentTypeError(f"memory size {part!r} is not a whole number of MB")
        value = int(part)
        if not MIN_MEMORY_MB <= value <= MAX_MEMORY_MB:
            raise argparse.ArgumentTypeError(
                f"memory size {value} MB is outside Lambda's {MIN_MEMORY_MB}–{MAX_MEMORY_MB:,} MB"
            )
        if value in sizes:
            raise argparse.ArgumentTypeError(f"memory size {value} MB is given twice")
        sizes.append(value)
    return tuple(sizes)


def function_names(text: str) -> tuple[str, ...]:
    """``logitModel,logit-lean``: at least one name, no repeats."""
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name for name in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated function names, not {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a function is named twice in {text!r}")
    return tuple(names)
