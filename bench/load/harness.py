"""The Locust harness's per-process state: its settings, the recorder, the model ``--verify``
checks against, the generator's CPU policy, and the results document built from them.

One :class:`Harness` per Locust process, made by the plugin's ``init`` hook
(:mod:`bench.load.plugin`) and reached by the users (:mod:`bench.load.user`) through
:func:`harness`. Imports Locust's runner classes only to tell the master from a worker.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from locust.runners import MasterRunner, WorkerRunner

from bench.load import priority
from bench.load.options import HarnessConfig, feature_rates, requests_of
from bench.load.priority import Priority
from bench.load.recorder import RunRecorder
from bench.load.results import RunFacts, build_document
from bench.load.scenarios import options_from, plan, stage_at
from bench.machine import collect_metadata
from bench.reference import load_coefficients, reference_prediction
from bench.requests import tutorial_requests
from bench.target import resource_model
from handler.features import TUTORIAL_QUERY


def load_reference(models: Path) -> Callable[[dict[str, str]], float]:
    """``--verify``'s oracle: the model computed independently of the handler (``bench.reference``)."""
    coefficients = load_coefficients(models)
    return lambda values: reference_prediction(coefficients, values)


class Harness:
    """The per-process state: settings, the recorder, the local model when verifying."""

    def __init__(self, environment, config: HarnessConfig) -> None:
        self.environment = environment
        self.config = config
        self.recorder = RunRecorder()
        self.rates = feature_rates(config.models)
        # What is sent: --requests FILE, else --payload tutorial as a one-line file, else
        # (--payload random) the tutorial's features drawn at their training rates.
        self.requests = requests_of(config)
        if self.requests is None and config.payload == "tutorial":
            self.requests = tutorial_requests(TUTORIAL_QUERY)
        file_verify = config.requests is not None
        self.reference = load_reference(config.models) if config.verify and not file_verify else None
        self.verify_lines = config.verify and file_verify
        self.user_numbers = itertools.count()
        self.exit_verdict: str | None = None
        # What produced the figures; asked once, at the start (a worker's results go to the master).
        is_worker = isinstance(environment.runner, WorkerRunner)
        self.resource_model = {} if is_worker else resource_model(environment.host)
        self.priority = self._raise_priority()
        self.worker_priorities: dict[str, str] = {}  # on the master: each worker's, as it reported it

    def _raise_priority(self) -> Priority:
        """The generator's CPU policy for the run (bench.load.priority), for this process."""
        if isinstance(self.environment.runner, MasterRunner):
            return Priority("normal", "the master sends nothing")
        parsed = self.environment.parsed_options
        processes = max(int(getattr(parsed, "processes", None) or 1), 1)
        config = self.config
        rate = config.rate / processes
        return priority.apply(config.generator_priority, config.open_loop, rate, config.spin_ns)

    def priority_used(self) -> str:
        """The policy of the processes that sent: this one's, or with ``--processes`` the workers'
        (the master sends nothing), each distinct one with how many workers ran under it."""
        if not self.worker_priorities:
            return self.priority.phrase()
        counts = Counter(self.worker_priorities.values())
        return "workers: " + "; ".join(f"{count} x {phrase}" for phrase, count in sorted(counts.items()))

    def facts(self) -> RunFacts:
        shape = self.environment.shape_class
        stages_run = list(getattr(shape, "stages_run", []))
        partial = False
        parsed = self.environment.parsed_options
        if shape is not None and stages_run and parsed is not None:
            stages = plan(options_from(parsed))
            partial = stages[-1].duration_s is not None and stage_at(stages, shape.get_run_time()) is not None
        runner = self.environment.runner
        distributed = None
        if isinstance(runner, MasterRunner):
            reporting = sorted(self.recorder.workers_reporting)
            missing = sorted(self.recorder.workers_reporting - self.recorder.workers_final)
            distributed = {
                "workers_reporting": len(reporting),
                "workers_with_final_report": len(reporting) - len(missing),
                "complete": not missing,
            }
        stats = runner.stats.total if runner is not None else None
        return RunFacts(
            threshold=self.config.threshold,
            limits=self.config.limits,
            open_loop=self.config.open_loop,
            rate=self.config.rate,
            stages_run=stages_run,
            end_unix=time.time(),
            locust_totals={
                "requests": stats.num_requests if stats else 0,
                "failures": stats.num_failures if stats else 0,
            },
            distributed=distributed,
            partial=partial or (distributed is not None and not distributed["complete"]),
        )

    def document(self) -> dict:
        options = {
            **asdict(self.config),
            "models": str(self.config.models),
            "results": str(self.config.results),
            "requests": None if self.config.requests is None else str(self.config.requests),
        }
        options["threshold"] = asdict(self.config.threshold)
        options["limits"] = asdict(self.config.limits)
        parsed = self.environment.parsed_options
        options.update(
            host=self.environment.host,
            scenario=getattr(parsed, "scenario", None),
            users=getattr(parsed, "num_users", None),
            spawn_rate=getattr(parsed, "spawn_rate", None),
            run_time=getattr(parsed, "run_time", None),
            processes=getattr(parsed, "processes", None),
            generator_priority_used=self.priority_used(),
        )
        return build_document(
            self.recorder, self.facts(), collect_metadata(options, resource_model=self.resource_model)
        )


_current: Harness | None = None


def set_current(state: Harness) -> Harness:
    """Make ``state`` this process's harness (the ``init`` hook)."""
    global _current
    _current = state
    return state


def current() -> Harness | None:
    """This process's harness, or None before ``init`` (or outside Locust)."""
    return _current


def harness() -> Harness:
    if _current is None:
        raise RuntimeError("the harness is not initialised (is this running under locust?)")
    return _current
