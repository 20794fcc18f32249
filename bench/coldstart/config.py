"""What a cold-start run is asked to do (:class:`ColdstartConfig`) and its progress line."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.verdict import Limits


@dataclass(frozen=True)
class ColdstartConfig:
    """One run of ``python -m bench.coldstart``, process or endpoint mode (``function`` set)."""

    variants: tuple[str, ...]
    trials: int
    warm: int  # warm calls per trial
    models_dir: Path
    memory_mb: int  # for the cost (process mode; endpoint mode takes the REPORT's Memory Size)
    cold_fraction: float
    target_ms: float  # warm p99
    cold_target_ms: float | None  # cold p50; None: no cold gate (endpoint mode without the flag)
    results: Path
    progress: bool
    model_base: str | None = None  # e.g. s3://bucket/prefix: MODEL_URI there instead of models_dir
    function: str | None = None  # endpoint mode: the Lambda function
    lambda_endpoint: str | None = None  # endpoint mode: the Invoke API (None: AWS)
    limits: Limits = field(default_factory=Limits)  # --max-error-rate (endpoint mode)
    requests: Path | None = None  # endpoint mode: --requests FILE, each Invoke's event (bench.requests)
    emulator_config: Path | None = None  # endpoint mode: --config FILE, the API the events are built for
    handler: str | None = None  # process mode: --handler module.function (any handler)
    code_dir: Path | None = None  # process mode: --code-dir DIR, the handler's task root
    handler_env: tuple[tuple[str, str], ...] = ()  # process mode: --env K=V, the handler's variables
    floor_function: str | None = None  # endpoint mode: a no-op measured beside the warm calls
    skipped: tuple[tuple[str, str], ...] = ()  # process mode, --variants all: (variant, why not)

    def options(self) -> dict:
        """The settings as the results' ``metadata.options`` record them."""
        options = {
            "variants": list(self.variants),
            "trials": self.trials,
            "warm": self.warm,
            "memory_mb": self.memory_mb,
            "cold_fraction": self.cold_fraction,
            "target_ms": self.target_ms,
            "cold_target_ms": self.cold_target_ms,
            "models": str(self.models_dir),
            "model_base": self.model_base,
        }
        if self.function is not None:
            options.update(
                function=self.function,
                lambda_endpoint=self.lambda_endpoint,
                limits=asdict(self.limits),
                requests=None if self.requests is None else str(self.requests),
                emulator_config=None if self.emulator_config is None else str(self.emulator_config),
            )
        if self.function is None and self.handler is None:
            options["requests"] = None if self.requests is None else str(self.requests)
        if self.handler is not None:
            options.update(
                handler=self.handler,
                code_dir=str(self.code_dir),
                env=dict(self.handler_env),
                requests=None if self.requests is None else str(self.requests),
            )
            options["floor_function"] = self.floor_function
        return options


class Progress:
    """A one-line progress bar on stderr (only on a terminal, or when asked)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled

    def step(self, label: str) -> None:
        self.done += 1
        if self.enabled:
            filled = 30 * self.done // self.total
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {label:<16}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()
