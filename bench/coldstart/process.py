"""Process mode: what a cold start costs, variant by variant, phase by phase, in fresh interpreters.

Each trial is a fresh interpreter (``bench/coldstart/child.py``), as a new Lambda environment
is; trials are interleaved across variants (A B C A B C …) so that drift hits all alike.
Timed from the parent's spawn instant (``perf_counter_ns`` just before the child is started;
CLOCK_MONOTONIC is shared with the child): *interpreter* (to the child's first statement),
*imports* (each library apart), *handler_code* (the handler's own modules), *load* (the
handler module's import: read + sha256 check + deserialize), *first_invoke*; the cold start
is spawn → the first call returned. Then ``--warm`` calls into an HdrHistogram (ns) and the
peak RSS. The child reports raw ns; this module computes the statistics (medians over trials
in µs, :func:`bench.stats.summarize`) and the gates (:mod:`bench.coldstart.gates`).

Not measured: Lambda's sandbox and runtime start-up (endpoint mode has them), downloading the
package, the child's exit.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import marshal
import os
import site
import subprocess
import sys
import time
from pathlib import Path

from bench.coldstart.config import ColdstartConfig, Progress
from bench.coldstart.gates import gates_for
from bench.lambdacost import cost_per_million
from bench.latency import LatencyRecorder
from bench.machine import collect_metadata
from bench.results import PROJECT_ROOT
from bench.results.coldstart import (
    ColdstartRun,
    PhasesNs,
    PhasesUs,
    ProcessTrial,
    ProcessVariant,
    SkippedVariant,
)
from bench.results.gate import judge
from bench.stats import summarize
from bench.target import IN_PROCESS
from handler.manifest import read as read_manifest
from handler.variants import VARIANTS

CHILD = Path(__file__).with_name("child.py")
PHASES = tuple(field.name for field in dataclasses.fields(PhasesNs))


def child_command(
    variant: str, models_dir: Path | str, warm: int, *python_flags: str, event: dict | None = None
) -> list[str]:
    """``python -S``: no .pth files run at start-up. Our editable install's finder alone costs
    ~10 ms per interpreter and has no counterpart on Lambda; the child puts the project and
    site-packages on ``sys.path`` itself, as Lambda's task root is. ``event``: what each call
    sends (default: the tutorial's query)."""
    paths = os.pathsep.join([str(PROJECT_ROOT), *site.getsitepackages()])
    chosen = VARIANTS[variant]
    variables = chosen.environment(str(models_dir))
    environment = ";".join(f"{key}={value}" for key, value in variables.items())
    model_format = chosen.model_format or variables.get("MODEL_FORMAT", "joblib")  # reference: the user's
    return [
        sys.executable, "-S", *python_flags, str(CHILD), paths, chosen.handler,
        model_format, chosen.input_path, environment, str(warm),
        *([marshal.dumps(event).hex()] if event is not None else []),
    ]  # fmt: skip


def handler_command(
    config: ColdstartConfig, warm: int, libraries: tuple[str, ...], event: dict | None, *python_flags: str
) -> list[str]:
    """Any handler (``--handler module.function --code-dir DIR``): the code directory first on
    ``sys.path`` (Lambda's task root), ``libraries`` imported apart before the handler, the
    event passed as marshal bytes in hex (the child imports nothing to read it)."""
    code_dir = str(config.code_dir)
    paths = os.pathsep.join([code_dir, str(PROJECT_ROOT), *site.getsitepackages()])
    encoded = marshal.dumps(event).hex() if event is not None else ""
    return [
        sys.executable, "-S", *python_flags, str(CHILD), paths, config.handler or "",
        "custom", ",".join(libraries), ";".join(f"{key}={value}" for key, value in config.handler_env),
        str(warm), encoded,
    ]  # fmt: skip


def _event(config: ColdstartConfig, trial: int) -> dict | None:
    """``--requests``: the trial's line (drawn by weight, seeded by the trial) as the event."""
    if config.requests is None:
        return None
    from bench.requests import Sampler, invoke_payload, read_requests

    line = Sampler(read_requests(config.requests), seed=trial).draw()
    function = (config.handler or "function").rsplit(".", 1)[0]
    return json.loads(invoke_payload(line, function))


def _importable(name: str) -> bool:
    """``-X importtime`` lists failed imports too (``org`` from a ``try: import org.python``)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def handler_libraries(config: ColdstartConfig) -> tuple[str, ...]:
    """The packages a handler imports from outside the standard library and its code
    directory, in the order their imports finished (``python -X importtime``, one run): the
    trials import each apart first, as the variants' known libraries are."""
    command = handler_command(config, 0, (), _event(config, 0), "-X", "importtime")
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=config.code_dir)
    if completed.returncode != 0:
        tail = [line for line in completed.stderr.splitlines() if not line.startswith("import time:")]
        raise RuntimeError(f"handler {config.handler}: the trial failed: {(tail or ['(no output)'])[-1]}")
    code_dir = Path(config.code_dir or ".")
    seen: list[str] = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        top = line.rsplit("|", 1)[-1].strip().split(".")[0]
        own = (code_dir / f"{top}.py").exists() or (code_dir / top).is_dir()
        ours = top in ("bench", "hdrh", "handler") or top.startswith("_")
        if top in sys.stdlib_module_names or own or ours or top in seen or not _importable(top):
            continue
        seen.append(top)
    return tuple(seen)


def run_trial(
    variant: str, config: ColdstartConfig, trial: int = 0, libraries: tuple[str, ...] = ()
) -> ProcessTrial:
    """One fresh interpreter; its raw timings from the spawn instant."""
    if config.handler is not None:
        command = handler_command(config, config.warm, libraries, _event(config, trial))
        cwd = config.code_dir
    else:
        models = config.model_base or config.models_dir
        command = child_command(variant, models, config.warm, event=_event(config, trial))
        cwd = PROJECT_ROOT
    spawned = time.perf_counter_ns()
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"variant {variant}: the trial failed: {tail[0]}")
    child = json.loads(completed.stdout.strip().splitlines()[-1])
    status = child.get("status")
    if config.handler is None and status is not None and not 200 <= status < 300:
        # a variant that answers the request with an error would time its error path
        raise RuntimeError(f"variant {variant}: the first call answered {status}: {child.get('body')}")
    instants = child["instants"]
    return ProcessTrial(
        cold_start_ns=instants["first_done"] - spawned,
        phases_ns=PhasesNs(
            interpreter=instants["ready"] - spawned,
            imports=sum(child["imports_ns"].values()),
            handler_code=instants["handler_code_ns"],
            load=instants["load_ns"],
            first_invoke=instants["first_invoke_ns"],
        ),
        imports_ns=dict(child["imports_ns"]),
        warm_histogram_ns=child["warm_ns"],
        peak_rss_kb=child["peak_rss_kb"],
    )


def _model_bytes(config: ColdstartConfig, variant: str) -> int | None:
    if config.handler is not None:
        return None
    try:
        manifest = read_manifest(config.models_dir / "manifest.json")
        return manifest.artifacts[VARIANTS[variant].artifact_in(config.models_dir)].bytes
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _reference_format(models_dir: Path) -> str:
    """The user's own file's format (the reference variant serves it as it is)."""
    try:
        return VARIANTS["reference"].resolve(read_manifest(models_dir / "manifest.json"))[1] or "unknown"
    except (OSError, ValueError):
        return "unknown"


def _median_us(values_ns: list[int]) -> float:
    return summarize([value / 1_000 for value in values_ns]).p50


def summarize_variant(variant: str, trials: list[ProcessTrial], config: ColdstartConfig) -> ProcessVariant:
    """Medians over the trials (µs), the merged warm histogram, the cost and the gates; the
    ratios to the tutorial are filled in by :func:`add_ratios`."""
    cold = summarize([trial.cold_start_ns / 1_000 for trial in trials], f"{variant} cold start")
    warm = LatencyRecorder("ns")
    for trial in trials:
        if trial.warm_histogram_ns:
            warm.add_encoded(trial.warm_histogram_ns)
    warm_series = warm.series()
    phases = PhasesUs(
        **{name: _median_us([getattr(trial.phases_ns, name) for trial in trials]) for name in PHASES}
    )
    libraries = sorted({name for trial in trials for name in trial.imports_ns})
    imports = {name: _median_us([trial.imports_ns[name] for trial in trials]) for name in libraries}
    cost = cost_per_million(warm_series.p50 / 1_000, cold.p50 / 1_000, config.memory_mb, config.cold_fraction)
    gates = gates_for(
        variant, "cold_start_us", cold, warm, config.target_ms, config.cold_target_ms, config.warm
    )
    if config.handler is not None:
        handler, model_format, input_path = config.handler, "custom", "custom"
    else:
        chosen = VARIANTS[variant]
        model_format = chosen.model_format or _reference_format(config.models_dir)
        handler, input_path = chosen.handler, chosen.input_path
    return ProcessVariant(
        name=variant,
        handler=handler,
        model_format=model_format,
        input_path=input_path,
        cold_start_us=cold,
        phases_us=phases,
        imports_us=imports,
        start_to_ready_us=cold.p50 - phases.first_invoke,
        warm_us=warm_series,
        peak_rss_mb=round(max(trial.peak_rss_kb for trial in trials) / 1024, 1),
        model_bytes=_model_bytes(config, variant),
        cost_per_million_usd=round(cost, 4),
        cold_speedup_vs_tutorial=None,
        warm_speedup_vs_tutorial=None,
        gates=gates,
        status=judge(gates),
    )


def add_ratios(rows: list[ProcessVariant]) -> list[ProcessVariant]:
    """The rows with their speed-ups over the tutorial's handler (None when it was not run)."""
    tutorial = next((row for row in rows if row.name == "tutorial"), None)
    if tutorial is None:
        return rows
    return [
        dataclasses.replace(
            row,
            cold_speedup_vs_tutorial=round(tutorial.cold_start_us.p50 / row.cold_start_us.p50, 1),
            warm_speedup_vs_tutorial=(
                round(tutorial.warm_us.p50 / row.warm_us.p50, 1) if row.warm_us.p50 else None
            ),
        )
        for row in rows
    ]


def measure(config: ColdstartConfig) -> ColdstartRun:
    """Every round of trials; on Ctrl-C or SIGTERM the complete rounds, marked ``partial``."""
    progress = Progress(config.trials * len(config.variants), config.progress)
    raw: dict[str, list[ProcessTrial]] = {variant: [] for variant in config.variants}
    partial = False
    libraries = handler_libraries(config) if config.handler is not None else ()
    try:
        for trial in range(config.trials):
            for variant in config.variants:  # interleaved: A B C A B C ...
                raw[variant].append(run_trial(variant, config, trial, libraries))
                progress.step(variant)
    except KeyboardInterrupt:
        partial = True
        rounds = min(len(trials) for trials in raw.values())
        if rounds == 0:
            raise
        raw = {variant: trials[:rounds] for variant, trials in raw.items()}
    rows = add_ratios([summarize_variant(variant, raw[variant], config) for variant in config.variants])
    return ColdstartRun(
        metadata=collect_metadata(config.options(), resource_model=IN_PROCESS),
        partial=partial,
        variants=rows,
        trials=raw,
        status=judge([gate for row in rows for gate in row.gates]),
        skipped=[SkippedVariant(variant, reason) for variant, reason in config.skipped],
    )


def importtime(variant: str, models_dir: Path, top: int = 15) -> list[tuple[str, int]]:
    """The top imports by cumulative time (µs) in one cold start, from ``python -X importtime``."""
    command = child_command(variant, models_dir, 0, "-X", "importtime")
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    if completed.returncode != 0:
        raise RuntimeError(f"variant {variant}: the trial failed")
    rows = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = (
            part.strip() for part in line.removeprefix("import time:").split("|")
        )
        rows.append((name.strip(), int(cumulative_us)))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:top]
