"""The Locust harness's results document (kind ``locust``) and its console table, from a recorder.

The document is :class:`bench.results.LocustRun` (``schema_version`` 3): ``metadata``;
``options``; ``endpoints.<function>`` with
``requests`` (= ``sent``), ``outcomes``, ``verify_failures``, ``missed_sends``, ``e2e_us``,
``e2e_intended_us`` and ``schedule_lag_us`` (open loop), ``handler_us``, ``throttled_us`` (the
429 answers' end-to-end time), ``cold_starts`` (``count``, ``e2e_us``, ``handler_init_us``,
``init_duration_us``), ``timeline`` and ``stages`` (per wall-clock second and per scenario
stage: requests, p50/p99 in µs from 2-significant-digit histograms, errors, cold starts, and
the 2xx answers alone: ``ok``, ``ok_p50_us``, ``ok_p99_us``, with the 429 count ``throttled``)
and ``verdict``;
top-level ``timeline``, ``stages``, ``verdict``, ``schedule``, ``locust_totals`` (Locust's
own counts, to cross-check), ``distributed`` and ``partial``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.hostmade import HostMade, InitNeeds, during_inits, estimate
from bench.load.recorder import OUTCOMES, EndpointRecord, RunRecorder, Second
from bench.results import LocustRun, Metadata
from bench.results.gate import Gate, judge, ordered
from bench.results.kinds import ColdStarts, LocustEndpoint, LocustVerdict, Schedule, SecondRow, StageRow
from bench.verdict import Limits, Threshold, contention_gate, error_gate, evaluate, schedule_gate


@dataclass(frozen=True)
class RunFacts:
    """What the recorder does not know: the run's settings and how it went."""

    threshold: Threshold
    limits: Limits
    open_loop: bool
    rate: float  # open loop: total req/s planned (0: closed loop)
    stages_run: list[dict]
    end_unix: float
    locust_totals: dict
    distributed: dict | None
    partial: bool


def _percentile(histogram, count: int, percentile: float) -> float | None:
    return float(histogram.get_value_at_percentile(percentile)) if count else None


def _second_row(wall_second: int, entry: Second) -> SecondRow:
    return SecondRow(
        t=wall_second,
        requests=entry.requests,
        p50_us=_percentile(entry.histogram, entry.requests, 50),
        p99_us=_percentile(entry.histogram, entry.requests, 99),
        errors=entry.errors,
        cold_starts=entry.cold_starts,
        ok=entry.ok,
        ok_p50_us=_percentile(entry.ok_histogram, entry.ok, 50),
        ok_p99_us=_percentile(entry.ok_histogram, entry.ok, 99),
        throttled=entry.throttled,
    )


def _timeline(seconds: dict[int, Second]) -> list[SecondRow]:
    return [_second_row(second, seconds[second]) for second in sorted(seconds)]


def _stages(seconds: dict[int, Second], facts: RunFacts) -> list[StageRow]:
    """Per scenario stage. Each wall-clock second counts in the stage holding its midpoint;
    the percentiles come from the seconds wholly inside the stage (when it has any), so that
    a stage's latency is not mixed with the first moments of the next."""
    rows = []
    for position, stage in enumerate(facts.stages_run):
        start = stage["start_unix"]
        end = (
            facts.stages_run[position + 1]["start_unix"]
            if position + 1 < len(facts.stages_run)
            else facts.end_unix
        )
        first, last = position == 0, position + 1 == len(facts.stages_run)
        counted, inside = Second(), Second()
        for wall_second, entry in seconds.items():
            middle = wall_second + 0.5
            if start <= middle < end or (first and middle < start) or (last and middle >= end):
                counted.add(entry)
                if start <= wall_second and wall_second + 1 <= end:
                    inside.add(entry)
        row = _second_row(int(start), counted)
        latency = _second_row(int(start), inside) if inside.requests else row
        duration = max(end - start, 1e-9)
        rows.append(
            StageRow(
                name=stage["name"],
                users=stage["users"],
                start_unix=start,
                end_unix=end,
                achieved_rps=round(counted.requests / duration, 3),
                full_seconds=sum(1 for t in seconds if start <= t and t + 1 <= end),
                requests=row.requests,
                p50_us=latency.p50_us,
                p99_us=latency.p99_us,
                errors=row.errors,
                cold_starts=row.cold_starts,
                ok=row.ok,
                ok_p50_us=latency.ok_p50_us,
                ok_p99_us=latency.ok_p99_us,
                throttled=row.throttled,
            )
        )
    return rows


def _latency(name: str, record: EndpointRecord, facts: RunFacts, series_name: str) -> Gate:
    """The latency gate of one of the endpoint's series (``e2e_intended`` or ``e2e``)."""
    chosen, threshold = record.series[series_name], facts.threshold
    return evaluate(
        threshold,
        samples=chosen.count,
        over_target=chosen.count_over_us(threshold.target_us),
        observed_us=chosen.percentile_us(threshold.percentile) if chosen.count else 0.0,
        field=f"{name} {series_name}_us p{threshold.percentile:g}",
    )


def host_made(record: EndpointRecord) -> HostMade | None:
    """How many of the endpoint's Lambda throttles Lambda would have answered, had each init
    had its own CPU (:mod:`bench.hostmade`), from what the recorder kept about inits."""
    counters = record.counters
    needs = InitNeeds(
        inits=counters["init_figures"],
        wall_us=counters["init_wall_us"],
        needed_us=counters["init_needed_us"],
        contended=counters["init_figures_contended"],
    )
    timeline = {second: (row.lambda_throttles, row.cold_starts) for second, row in record.timeline.items()}
    throttles = counters["lambda_throttles"]
    return estimate(throttles, during_inits(timeline, throttles), needs)


def _endpoint(name: str, record: EndpointRecord, facts: RunFacts) -> LocustEndpoint:
    series = record.series
    verdict = _latency(name, record, facts, "e2e_intended" if facts.open_loop else "e2e")
    gates = [
        error_gate(
            name,
            dict(record.outcomes),
            facts.limits,
            record.counters["verify_failures"],
            lambda_throttles=record.counters["lambda_throttles"],
            lambda_throttles_429=record.counters["lambda_throttles_429"],
            host_made=host_made(record),
            inits_finished=series["cold_e2e"].count,
        ),
        verdict,
    ]
    if facts.open_loop:
        lag, from_sent = series["schedule_lag"], _latency(name, record, facts, "e2e")
        gates.append(
            schedule_gate(
                name,
                sent=record.counters["sent"],
                late=record.counters["missed_sends"],
                lag_p99_us=lag.percentile_us(99) if lag.count else 0.0,
                target_us=facts.threshold.target_us,
                limits=facts.limits,
                from_sent=from_sent,
                from_intended=verdict,
                interval_us=1e6 / facts.rate if facts.rate > 0 else None,
            )
        )
    counters = record.counters
    if counters["measured"]:  # an emulator with the resource model on: was the host the limit?
        gates.append(
            contention_gate(
                name,
                measured=counters["measured"],
                contended_invokes=counters["contended_invokes"],
                inits=series["cold_e2e"].count,
                contended_inits=counters["contended_inits"],
                limits=facts.limits,
                latency=verdict,
            )
        )
    gates = ordered(gates)
    return LocustEndpoint(
        requests=record.counters["sent"],
        sent=record.counters["sent"],
        outcomes={outcome: record.outcomes[outcome] for outcome in OUTCOMES},
        verify_failures=record.counters["verify_failures"],
        missed_sends=record.counters["missed_sends"],
        e2e_us=series["e2e"].series(),
        handler_us=series["handler"].series(),
        throttled_us=series["throttled"].series(),
        cold_starts=ColdStarts(
            count=series["cold_e2e"].count,
            e2e_us=series["cold_e2e"].series(),
            handler_init_us=series["cold_handler_init"].series(),
            init_duration_us=series["cold_init_duration"].series(),
        ),
        timeline=_timeline(record.timeline),
        stages=_stages(record.timeline, facts),
        verdict=verdict,
        status=judge(gates),
        gates=gates,
        e2e_intended_us=series["e2e_intended"].series() if facts.open_loop else None,
        schedule_lag_us=series["schedule_lag"].series() if facts.open_loop else None,
    )


def _schedule(recorder: RunRecorder, facts: RunFacts) -> Schedule | None:
    """The whole run's schedule figures (each endpoint's own are in its schedule gate)."""
    if not facts.open_loop:
        return None
    lag_p99 = max(
        (record.series["schedule_lag"].percentile_us(99) for record in recorder.endpoints.values()),
        default=0.0,
    )
    missed = sum(record.counters["missed_sends"] for record in recorder.endpoints.values())
    sent = sum(record.counters["sent"] for record in recorder.endpoints.values())
    goal_us = facts.limits.lag_us(facts.threshold.target_us)
    kept = (missed / sent if sent else 0.0) <= facts.limits.max_late_share and lag_p99 <= goal_us
    problems = []
    if missed:
        problems.append(f"{missed} sends went out late (more than --miss-us after their intended time)")
    if lag_p99 > goal_us:
        problems.append(f"schedule lag p99 {lag_p99:g} µs > {goal_us:g} µs")
    return Schedule(
        kept=kept,
        lag_p99_us=lag_p99,
        lag_goal_us=goal_us,
        missed_sends=missed,
        warning=None if kept else "the load generator could not keep the schedule: " + "; ".join(problems),
    )


def build_document(recorder: RunRecorder, facts: RunFacts, metadata: Metadata) -> LocustRun:
    endpoints = {name: _endpoint(name, record, facts) for name, record in sorted(recorder.endpoints.items())}
    schedule = _schedule(recorder, facts)
    gates = ordered([gate for endpoint in endpoints.values() for gate in endpoint.gates])
    reasons = [gate.message for gate in gates]
    all_seconds = recorder.merge_timelines()
    return LocustRun(
        metadata=metadata,
        partial=facts.partial,
        endpoints=endpoints,
        timeline=_timeline(all_seconds),
        stages=_stages(all_seconds, facts),
        schedule=schedule,
        locust_totals=facts.locust_totals,
        distributed=facts.distributed,
        verdict=LocustVerdict(
            status=judge(gates),
            series="e2e_intended_us" if facts.open_loop else "e2e_us",
            target_us=facts.threshold.target_us,
            percentile=facts.threshold.percentile,
            confidence=facts.threshold.confidence,
            reasons=reasons,
            gates=gates,
        ),
    )


def console_table(document: LocustRun) -> str:
    """A plain-text table in µs (the one place this module formats numbers for people)."""
    header = (
        f"{'endpoint':<28}{'sent':>8}{'2xx':>8}{'errors':>8}{'cold':>6}"
        f"{'p50 µs':>10}{'p90 µs':>10}{'p99 µs':>10}{'p99.9 µs':>10}{'max µs':>10}"
        f"{'handler p50':>12}{'verdict':>9}"
    )
    lines = [header, "-" * len(header)]
    intended = document.verdict.series == "e2e_intended_us"
    for name, endpoint in document.endpoints.items():
        e2e = (endpoint.e2e_intended_us if intended else None) or endpoint.e2e_us
        outcomes = endpoint.outcomes
        errors = sum(outcomes.values()) - outcomes["2xx"] - outcomes["cancelled"] + endpoint.verify_failures
        handler = endpoint.handler_us
        handler_p50 = f"{handler.p50:>12.1f}" if handler.count else f"{'-':>12}"
        lines.append(
            f"{name:<28}{endpoint.sent:>8}{outcomes['2xx']:>8}{errors:>8}"
            f"{endpoint.cold_starts.count:>6}{e2e.p50:>10.1f}{e2e.p90:>10.1f}"
            f"{e2e.p99:>10.1f}{e2e.p999:>10.1f}{e2e.max:>10.1f}"
            f"{handler_p50}{endpoint.status:>9}"
        )
    lines.append(f"latency series: {document.verdict.series} (µs, HdrHistogram, 3 significant digits)")
    if document.schedule is not None:
        schedule = document.schedule
        lines.append(
            f"schedule lag p99: {schedule.lag_p99_us:.1f} µs (goal {schedule.lag_goal_us:g}); "
            f"missed sends: {schedule.missed_sends}"
        )
    lines += document.verdict.reasons
    lines.append(f"verdict: {document.verdict.status}")
    return "\n".join(lines)
