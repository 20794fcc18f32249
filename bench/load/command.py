"""The one place that builds a ``locust -f locustfile.py`` command line.

Every tool that runs the harness as a user would (the pipeline, the overload benchmark, the
harness check, the tests) describes the run as a :class:`LocustCommand` and runs ``argv()``
in a child process. A field left at ``None`` (or ``False``) is not passed, so Locust's or the
plugin's own default applies (``bench.load.options.add_options``); options this dataclass does
not name go in ``extra``, verbatim. Building the list runs nothing and imports no Locust.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bench.results import PROJECT_ROOT

LOCUSTFILE = PROJECT_ROOT / "locustfile.py"


@dataclass(frozen=True)
class LocustCommand:
    host: str
    functions: tuple[str, ...] = ()  # --function, repeated: "staging/logit-lean" or "path:weight"
    results: Path | None = None
    users: int | None = None  # -u
    spawn_rate: float | None = None  # -r
    run_time_s: int | None = None  # -t; Locust takes whole seconds only
    target_ms: float | None = None
    percentile: float | None = None
    models: Path | None = None
    scenario: str | None = None  # steady | step | spike | soak
    steps: int | None = None
    step_time_s: float | None = None
    spike_users: int | None = None
    arrival: str | None = None  # closed | open
    rate: float | None = None  # open loop: total req/s
    arrival_dist: str | None = None
    max_inflight: int | None = None
    verify: bool = False
    processes: int | None = None
    headless: bool = True  # False: the web UI (pass --web-host/--web-port in extra)
    only_summary: bool = True
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.run_time_s is not None and (not isinstance(self.run_time_s, int) or self.run_time_s < 1):
            raise ValueError(f"run_time_s must be a whole number of seconds >= 1, not {self.run_time_s!r}")

    def argv(self) -> list[str]:
        """``[python, -m, locust, -f, <project>/locustfile.py, (--headless), --host, ...]``."""
        command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
        command += ["--headless"] if self.headless else []
        command += ["--only-summary"] if self.only_summary else []
        command += ["--host", self.host]
        for function in self.functions:
            command += ["--function", function]
        options: tuple[tuple[str, object], ...] = (
            ("-u", self.users),
            ("-r", self.spawn_rate),
            ("-t", None if self.run_time_s is None else f"{self.run_time_s}s"),
            ("--processes", self.processes),
            ("--results", self.results),
            ("--target-ms", self.target_ms),
            ("--percentile", self.percentile),
            ("--models", self.models),
            ("--scenario", self.scenario),
            ("--steps", self.steps),
            ("--step-time", self.step_time_s),
            ("--spike-users", self.spike_users),
            ("--arrival", self.arrival),
            ("--rate", self.rate),
            ("--arrival-dist", self.arrival_dist),
            ("--max-inflight", self.max_inflight),
        )
        for flag, value in options:
            if value is not None:
                command += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        command += ["--verify"] if self.verify else []
        return [*command, *self.extra]
