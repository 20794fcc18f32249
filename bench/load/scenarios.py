"""Load scenarios as Locust ``LoadTestShape``: steady, step, spike, soak.

A scenario is a list of stages (name, duration, users, spawn rate), built from Locust's own
``-u``/``-r``/``-t`` (``use_common_options``) and ours:

- ``steady``: ``-u`` users for ``-t`` (forever without ``-t``, as plain Locust).
- ``step``: ``k × -u`` users for ``--step-time`` s, k = 1..``--steps``: finds the knee. Under
  open loop each user keeps its share of ``--rate``, so the offered rate steps up too.
- ``spike``: ``-u`` users for ``--step-time`` s, then ``--spike-users`` (default 10 × ``-u``)
  started at once for ``--step-time`` s (on Lambda: cold starts), then ``-u`` again.
- ``soak``: ``-u`` users for ``-t`` (default 30 min).

Pure planning here (no Locust import, so it is testable in any process); the
``LoadTestShape`` that follows the plan is ``bench.load.plugin.ScenarioShape``. It runs
where the load is steered (the master, or the single process) and records each stage's start
as a wall-clock time, so the results can cut the timeline per stage.
"""

from __future__ import annotations

from dataclasses import dataclass

SCENARIOS = ("steady", "step", "spike", "soak")
SOAK_DEFAULT_S = 1800.0


@dataclass(frozen=True)
class Stage:
    name: str
    duration_s: float | None  # None: until stopped
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class ScenarioOptions:
    scenario: str
    users: int
    spawn_rate: float
    run_time_s: float | None
    step_time_s: float
    steps: int
    spike_users: int | None


def plan(options: ScenarioOptions) -> list[Stage]:
    """The stages of a scenario, in order."""
    users, rate = max(options.users, 1), max(options.spawn_rate, 0.1)
    if options.scenario == "steady":
        return [Stage("steady", options.run_time_s, users, rate)]
    if options.scenario == "soak":
        return [Stage("soak", options.run_time_s or SOAK_DEFAULT_S, users, rate)]
    if options.scenario == "step":
        if options.steps < 1:
            raise ValueError(f"--steps must be at least 1, not {options.steps}")
        return [
            Stage(f"step {k}", options.step_time_s, k * users, max(rate, float(users)))
            for k in range(1, options.steps + 1)
        ]
    if options.scenario == "spike":
        spike = options.spike_users or 10 * users
        return [
            Stage("baseline", options.step_time_s, users, rate),
            Stage("spike", options.step_time_s, spike, float(spike)),
            Stage("recovery", options.step_time_s, users, float(spike)),
        ]
    raise ValueError(f"unknown scenario {options.scenario!r}; choose from {SCENARIOS}")


def stage_at(stages: list[Stage], elapsed_s: float) -> tuple[int, Stage] | None:
    """The stage running ``elapsed_s`` after the start, or None when the scenario is over."""
    start = 0.0
    for index, stage in enumerate(stages):
        if stage.duration_s is None or elapsed_s < start + stage.duration_s:
            return index, stage
        start += stage.duration_s
    return None


def options_from(parsed) -> ScenarioOptions:
    return ScenarioOptions(
        scenario=parsed.scenario,
        users=parsed.num_users or 1,
        spawn_rate=parsed.spawn_rate or 1.0,
        run_time_s=float(parsed.run_time) if parsed.run_time else None,
        step_time_s=float(parsed.step_time),
        steps=int(parsed.steps),
        spike_users=int(parsed.spike_users) if parsed.spike_users else None,
    )
