"""The sweep: each function through each memory size, its original configuration put back,
and the recommendation per strategy (:mod:`bench.powertune.strategy`).

A function's sweep ends early on Ctrl-C, SIGTERM (:class:`~bench.powertune.session.Interrupted`)
or a Lambda API error; in every case its original memory size and environment are restored
before anything else happens, and what was measured so far is returned with the reason it
stopped. Which sizes compete: those that fit, answered without failing the error gate and
were measured; the *cost* strategy also needs the size's verdict to be PASS (its percentile
meets the target at the early-stopping bound, nothing contended). The duration ranked is the
target percentile of warm Duration, the cost the cost per million at ``--cold-fraction`` for
the function's architecture. Power Tuning's own pick (trimmed means, no target) is kept beside.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bench.powertune.config import PowertuneConfig
from bench.powertune.measure import sample_size, summarize_size, with_floor
from bench.powertune.session import FunctionSession, Interrupted, shielded
from bench.powertune.strategy import STRATEGIES, Candidate, pick
from bench.results.gate import FAIL, INVALID, PASS, combine
from bench.results.powertune import Floor, FunctionSweep, Recommendation, SizeResult
from bench.verdict import too_few

Echo = Callable[[str], None]
STOPS = (KeyboardInterrupt, Interrupted)


def _percentile_us(size: SizeResult, percentile: float) -> float:
    return size.warm_duration_us.decode().percentile_us(percentile) if size.warm_duration_us.count else 0.0


def competing(sizes: list[SizeResult]) -> list[SizeResult]:
    """The sizes a strategy may pick: they fit, did not fail on errors and were measured."""
    return [
        size
        for size in sizes
        if size.fits
        and size.warm_duration_us.count
        and size.cost_per_million_usd
        and all(gate.status != FAIL for gate in size.gates if gate.check == "errors")
    ]


def _ms(us: float) -> str:
    return f"{us:,.0f} µs" if us < 1_000 else f"{us / 1_000:,.3g} ms"


def recommend(
    sizes: list[SizeResult], config: PowertuneConfig, architecture: str
) -> tuple[list[Recommendation], list[Recommendation]]:
    """(ours, Power Tuning's) recommendation for every strategy."""
    eligible = competing(sizes)
    quantile = f"p{config.percentile:g}"
    ours = [
        Candidate(
            size.memory_mb,
            size.cost_per_million_usd[architecture],
            _percentile_us(size, config.percentile),
            size.status == PASS,
        )
        for size in eligible
    ]
    theirs = [
        Candidate(size.memory_mb, size.powertuning.average_price_usd, size.powertuning.average_duration_us)
        for size in eligible
        if size.powertuning is not None
    ]
    target = _ms(config.target_ms * 1_000)
    status = {size.memory_mb: size.status for size in sizes}
    recommendations, powertuning = [], []
    for strategy in STRATEGIES:
        chosen = pick(strategy, ours, config.balanced_weight)
        if chosen is None:
            fastest = pick("speed", ours)
            message = f"{strategy}: {none_passes(sizes, f'warm {quantile} ≤ {target}')}" + (
                f"; the fastest, {fastest.memory_mb} MB, has {quantile} {_ms(fastest.duration)}"
                if fastest is not None
                else "; no size could be measured"
            )
            recommendations.append(Recommendation(strategy, None, None, None, False, message))
        else:
            message = (
                f"{strategy}: {chosen.memory_mb} MB, warm {quantile} {_ms(chosen.duration)} "
                f"({status[chosen.memory_mb]} against {target}), ${chosen.cost:.4f} per million"
            )
            recommendations.append(
                Recommendation(
                    strategy, chosen.memory_mb, chosen.duration, chosen.cost, chosen.meets_target, message
                )
            )
        theirs_chosen = pick(strategy, theirs, config.balanced_weight, require_target=False)
        if theirs_chosen is None:
            none = Recommendation(strategy, None, None, None, False, f"{strategy}: none measured")
            powertuning.append(none)
        else:
            message = (
                f"{strategy} (Power Tuning's rule on its trimmed means): {theirs_chosen.memory_mb} MB, "
                f"average {_ms(theirs_chosen.duration)}, ${theirs_chosen.cost * 1e6:.4f} per million "
                "(duration only)"
            )
            powertuning.append(
                Recommendation(
                    strategy, theirs_chosen.memory_mb, theirs_chosen.duration, theirs_chosen.cost * 1e6,
                    True, message,
                )
            )  # fmt: skip
    return recommendations, powertuning


def why_not_judged(size: SizeResult) -> str:
    """Why a size is INVALID, in the words of the gate that made it so (its reason, not its
    figures): ``200 samples; p99 needs ≥ 459 (none over)``, the floor, the host's contention."""
    gates = [gate for gate in size.gates if gate.status == INVALID]
    harness = [gate for gate in gates if gate.check in ("floor", "contention", "schedule")]
    gate = (harness or gates or [None])[0]
    if gate is None:
        return "not measured"
    details = gate.details
    if gate.check == "latency":  # "200 samples; p99 needs ≥ 459 (none over)"
        over, needed = int(details["over_target"]), int(details["samples_needed"])
        return too_few(gate.samples, over, gate.samples + needed, float(details["percentile"]))
    if gate.check == "floor":  # "the floor decides it: the no-op itself misses the 1,000 µs target"
        rounds = details["floor_rounds_us"]
        reach = max(rounds) + (max(rounds) - min(rounds))
        if details["within_spread"]:
            return f"the floor decides it: within the floor's run-to-run spread (up to {reach:,.0f} µs)"
        return f"the floor decides it: the no-op itself misses the {gate.threshold:,.0f} µs target"
    return gate.message.removeprefix(f"{INVALID}: ")


def none_passes(sizes: list[SizeResult], claim: str) -> str:
    """No size passes ``claim``: because every size was judged and missed it ("no size meets
    the target"), or because some could not be judged (and which, and why)."""
    failed = [size for size in sizes if size.status == FAIL]
    unjudged = [size for size in sizes if size.status == INVALID]
    missed = ", ".join(f"{size.memory_mb} MB FAIL" for size in failed)
    why = "; ".join(f"{size.memory_mb} MB INVALID: {why_not_judged(size)}" for size in unjudged)
    if not sizes:
        return f"no size could be judged against {claim}: none was measured"
    if not unjudged:
        return f"no size meets the target {claim} ({missed})"
    if not failed:
        return f"no size could be judged against {claim} ({why})"
    return f"no judged size meets the target {claim} ({missed}), and some could not be judged ({why})"


def function_status(sizes: list[SizeResult], recommendations: list[Recommendation], strategy: str) -> str:
    """The status of the size ``strategy`` recommends; with none, FAIL when every size was judged
    and failed, else INVALID (a size that could not be judged might have met the target)."""
    chosen = next(r for r in recommendations if r.strategy == strategy)
    if chosen.memory_mb is not None:
        return next(size.status for size in sizes if size.memory_mb == chosen.memory_mb)
    statuses = [size.status for size in sizes]
    return FAIL if statuses and all(status == FAIL for status in statuses) else INVALID


def verdict_line(function: FunctionSweep, strategy: str) -> str:
    """The function's power-tuning answer in one line: ``PASS: …``, ``FAIL: …`` or ``cannot be
    judged: …`` (never "no size passes" for sizes that were not judged)."""
    chosen = next((r for r in function.recommendations if r.strategy == strategy), None)
    message = chosen.message if chosen is not None else "no recommendation"
    word = "cannot be judged" if function.status == INVALID else function.status
    return f"{word}: {message}"


def with_floors(
    sweep: FunctionSweep, floors: dict[int, Floor | None], config: PowertuneConfig
) -> FunctionSweep:
    """``sweep`` with the floor beside each size (:func:`bench.powertune.measure.with_floor`),
    the recommendations and the status made again."""
    sizes = [with_floor(sweep.function, size, floors.get(size.memory_mb)) for size in sweep.sizes]
    recommendations, powertuning = recommend(sizes, config, sweep.architecture)
    status = function_status(sizes, recommendations, config.strategy)
    return dataclasses.replace(
        sweep, sizes=sizes, recommendations=recommendations, powertuning_recommendations=powertuning,
        status=status,
    )  # fmt: skip


def run_status(functions: list[FunctionSweep]) -> str:
    return combine([function.status for function in functions])


def size_line(function: str, size: SizeResult, config: PowertuneConfig, architecture: str) -> str:
    """One line per size as it is measured."""
    head = f"{function} {size.memory_mb:>5} MB"
    if size.cpu_share_vcpus is not None:
        head += f" ({size.cpu_share_vcpus:.3f} vCPU)"
    if not size.fits:
        return f"{head}: does not fit: {size.error_type}, Max Memory Used {size.max_memory_used_mb} MB"
    parts = []
    if size.cold_start_us is not None:
        cold = f"cold p50 {size.cold_start_us.p50 / 1_000:,.1f} ms from {cold_from(size)}"
        if size.init_duration_us is not None:
            init_cpu = size.init_cpu_us
            cpu = f", init CPU {init_cpu.p50 / 1_000:,.0f} ms" if init_cpu is not None else ""
            cold += f" (Init Duration p50 {size.init_duration_us.p50 / 1_000:,.0f} ms{cpu})"
        parts.append(cold)
    elif size.cold_trials_run:
        parts.append(f"no cold figure: none of {size.cold_trials_run} trials reported an Init Duration")
    warm = size.warm_duration_us
    if warm.count:
        parts.append(f"warm Duration p50 {_ms(warm.p50)} p99 {_ms(warm.p99)} ({warm.count:,})")
        parts.append(f"billed {size.warm_billed_ms_mean:,.2f} ms")
    parts.append(f"max memory {size.max_memory_used_mb} MB")
    if size.cost_per_million_usd:
        parts.append(f"${size.cost_per_million_usd[architecture]:.4f} per million")
    return f"{head}: " + "; ".join(parts) + f"; {size.status}"


def cold_from(size: SizeResult) -> str:
    """``2 of 3 trials``: the cold figures' trials (those with an Init Duration) of those run."""
    run = size.cold_trials_run or len(size.cold_trials)
    return f"{len(size.cold_trials)} of {run} trials"


def floor_line(function: str, size: SizeResult) -> str | None:
    """The floor beside a size's Duration, and the size's verdict with it."""
    floor = size.floor
    if floor is None:
        return None
    merged = floor.warm_duration_us
    rounds = ", ".join(_ms(value) for value in floor.rounds_us)
    return (
        f"{function} {size.memory_mb:>5} MB floor ({floor.function}): warm Duration p50 {_ms(merged.p50)} "
        f"p{floor.percentile:g} {_ms(merged.decode().percentile_us(floor.percentile))} (rounds: {rounds}); "
        f"{size.status}"
    )


def _restore(session: FunctionSession, local: bool, echo: Echo, warn: Echo) -> bool:
    """Put the original configuration back, signals deferred meanwhile; False if it failed."""
    from botocore.exceptions import BotoCoreError, ClientError

    with shielded():
        try:
            session.restore()
        except (BotoCoreError, ClientError) as exc:
            if local:
                warn(f"{session.function}: not restored, the emulator has stopped ({exc})")
            else:
                warn(f"error: {session.function}: could not restore {session.describe()}: {exc}")
            return False
    echo(f"{session.function}: restored MemorySize {session.original_memory_mb} MB")
    return True


def sweep_function(
    client, function: str, config: PowertuneConfig, echo: Echo, warn: Echo
) -> tuple[FunctionSweep, BaseException | None]:
    """Every size of ``config.memory_mb`` for ``function``; the original configuration is
    restored before this returns (or raises). Returns the sweep and what stopped it early."""
    from botocore.exceptions import BotoCoreError, ClientError

    session = FunctionSession(client, function).read()
    sizes: list[SizeResult] = []
    stopped: BaseException | None = None
    try:
        for memory_mb in config.memory_mb:
            samples = sample_size(session, memory_mb, config)
            sizes.append(summarize_size(function, samples, config, session.architecture))
            echo(size_line(function, sizes[-1], config, session.architecture))
    except (*STOPS, BotoCoreError, ClientError) as exc:
        stopped = exc
    finally:
        restored = _restore(session, config.local, echo, warn)
    recommendations, powertuning = recommend(sizes, config, session.architecture)
    sweep = FunctionSweep(
        function=function,
        architecture=session.architecture,
        original_memory_mb=session.original_memory_mb,
        restored=restored,
        sizes=sizes,
        recommendations=recommendations,
        powertuning_recommendations=powertuning,
        status=function_status(sizes, recommendations, config.strategy),
    )
    return sweep, stopped
