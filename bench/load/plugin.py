"""The Locust plugin: options, the Lambda endpoint user, and the event hooks that record µs.

Imported by ``locustfile.py``; works with every standard Locust flag (``--headless -u -r -t``,
``--processes N``, ``--master``/``--worker``, the web UI). Hooks, as Locust plugins do:

- ``init_command_line_parser``: our options (see :func:`add_options`).
- ``init``: validates them (a bad value: one line on stderr, exit 2) and adds a web UI tab;
  in every process, finer response-time buckets for Locust's own screens (``bench.load.buckets``).
- ``request``: every finished request into :class:`bench.load.recorder.RunRecorder`, from the
  exact float Locust carries (not its whole-millisecond buckets).
- ``report_to_master`` / ``worker_report``: workers ship encoded histograms and counters; the
  master adds them up.
- ``quitting``: the verdict sets the exit code (0 PASS, 1 FAIL, 3 INVALID).
- ``quit``: after the workers' last reports, the results JSON (atomically) and a µs table.
"""

from __future__ import annotations

import itertools
import logging
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlencode

import gevent
from gevent.pool import Pool
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from bench.load import buckets, priority
from bench.load.arrivals import intended_instants, wait_until
from bench.load.options import (
    HarnessConfig,
    OptionError,
    add_options,
    config_from,
    feature_rates,
    prediction_of,
    random_query,
    requests_of,
)
from bench.load.priority import Priority
from bench.load.recorder import RunRecorder
from bench.load.results import RunFacts, build_document, console_table
from bench.load.scenarios import options_from, plan, stage_at
from bench.machine import collect_metadata
from bench.reference import load_coefficients, reference_prediction
from bench.requests import RequestLine, Sampler, http_request, matches, prediction, tutorial_requests
from bench.results import write_json_atomic
from bench.target import resource_model
from bench.verdict import EXIT_CODES
from handler.features import TUTORIAL_QUERY

VERIFY_TOLERANCE = 1e-9


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


_harness: Harness | None = None


class ScenarioShape(LoadTestShape):
    """Drives Locust through the chosen ``--scenario``; remembers when each stage began."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self.stages_run: list[dict] = []
        self._current: int | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self.stages_run = []
        self._current = None

    def tick(self) -> tuple[int, float] | None:
        parsed = self.runner.environment.parsed_options  # type: ignore[union-attr]
        found = stage_at(plan(options_from(parsed)), self.get_run_time())
        if found is None:
            return None
        index, stage = found
        if index != self._current:
            self._current = index
            self.stages_run.append({"index": index, **asdict(stage), "start_unix": time.time()})
        return stage.users, stage.spawn_rate


def harness() -> Harness:
    if _harness is None:
        raise RuntimeError("the harness is not initialised (is this running under locust?)")
    return _harness


class LambdaUser(FastHttpUser):
    """GETs ``/<function>?G1=..&G10=..``: closed loop (one request at a time, no think time) or
    open loop (requests on a schedule, up to ``--max-inflight`` in flight per user)."""

    abstract = True
    wait_time = constant(0)
    concurrency = 64
    network_timeout = 35.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        state = harness()
        self._bench = state
        self._rng = random.Random()
        self._paths = [path for path, _ in state.config.functions]
        self._weights = [weight for _, weight in state.config.functions]
        self._inflight = Pool(self._bench.config.max_inflight)
        requests = state.requests
        worker = getattr(self.environment.runner, "worker_index", 0) or 0  # --processes: each its own
        seed = state.config.requests_seed + 1_000_000 * worker + next(state.user_numbers)
        self._sampler = Sampler(requests, seed) if requests is not None else None

    def on_stop(self) -> None:
        self._inflight.kill(block=True, timeout=5)

    @task
    def invoke(self) -> None:
        if self._bench.config.open_loop:
            self._open_loop()
        else:
            self._send(self._pick(), None)

    def _pick(self) -> str:
        if len(self._paths) == 1:
            return self._paths[0]
        return self._rng.choices(self._paths, self._weights)[0]

    def _open_loop(self) -> None:
        config = self._bench.config
        parsed = self.environment.parsed_options
        users = max(int(getattr(parsed, "num_users", 1) or 1), 1)
        rate = config.rate / users
        start = time.perf_counter_ns() + int(self._rng.random() * 1e9 / rate)  # staggered phases
        for intended in intended_instants(rate, config.arrival_dist, start, self._rng):
            # Wake coarsely a spin window early and hand the instant to a sender greenlet that
            # waits precisely itself: no greenlet start-up between the instant and the send.
            # At --max-inflight the send waits for a free slot (wrk2's choice, not k6's drop):
            # it goes out late, its lag and its latency from the intended time show it.
            wait_until(intended - config.spin_ns, spin_ns=0)
            self._inflight.wait_available()
            self._inflight.spawn(self._send, self._pick(), intended)

    def _query(self) -> dict[str, str]:
        if self._bench.config.payload == "tutorial":
            return TUTORIAL_QUERY
        return random_query(self._rng, self._bench.rates)

    def _send(self, path: str, intended_ns: int | None) -> None:
        """One request: a line of ``--requests`` (its method, query, headers, body) or, without
        a file, a GET with the tutorial's features."""
        recorder = self._bench.recorder
        line = self._sampler.draw() if self._sampler is not None else None
        values = self._query() if line is None else dict(line.query)
        request = http_request(line, path) if line is not None else None
        meta: dict = {"endpoint": path}
        if intended_ns is not None:
            wait_until(intended_ns, spin_ns=self._bench.config.spin_ns)
        recorder.note_sent(path)
        try:
            sent_ns = time.perf_counter_ns()
            if intended_ns is not None:
                meta["lag_ns"] = lag_ns = sent_ns - intended_ns
                recorder.note_lag(path, lag_ns)
                if lag_ns > self._bench.config.miss_ns:
                    recorder.note_missed(path)
            options = {"name": f"/{path}", "context": {"usbench": meta}, "catch_response": True}
            if request is None:
                sending = self.client.get(f"/{path}?{urlencode(values)}", **options)
            else:
                body, headers = request.body or None, dict(request.headers)
                sending = self.client.request(
                    request.method, request.path, data=body, headers=headers, **options
                )
            with sending as response:
                if not 200 <= (response.status_code or 0) < 300:
                    return
                if line is not None and self._bench.verify_lines and line.has_expected:
                    self._verify_line(response, line, meta)
                elif self._bench.reference is not None:
                    self._verify(response, values, meta)
        except gevent.GreenletExit:
            recorder.note_cancelled(path)
            raise

    def _verify_line(self, response, line: RequestLine, meta: dict) -> None:
        """The answer's ``prediction`` against the line's ``expected`` (``--verify-tolerance``)."""
        got = prediction(response.text or "")
        if not matches(got, line.expected, self._bench.config.verify_tolerance):
            meta["verify_failed"] = True
            response.failure(
                f"prediction mismatch (line {line.number}): got {got!r}, expected {line.expected!r}"
            )

    def _verify(self, response, values: dict[str, str], meta: dict) -> None:
        expected = self._bench.reference(values)
        got = prediction_of(response.text or "")
        if got is None or abs(got - expected) > VERIFY_TOLERANCE:
            meta["verify_failed"] = True
            response.failure(f"prediction mismatch: got {got!r}, expected {expected!r}")


@events.init_command_line_parser.add_listener
def _on_parser(parser, **_kwargs) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    global _harness
    if environment.parsed_options is None:
        return
    try:
        _harness = Harness(environment, config_from(environment.parsed_options))
    except OptionError as error:
        sys.stderr.write(f"locust: {error}\n")
        sys.exit(2)
    except (OSError, ImportError) as error:
        sys.stderr.write(f"locust: --verify needs the local model: {error}\n")
        sys.exit(2)
    logging.info("generator priority: %s", _harness.priority.phrase())
    if environment.web_ui is not None:
        from bench.load.webui import install

        install(environment, lambda: _harness.recorder if _harness else None)
    if not isinstance(environment.runner, WorkerRunner):
        gevent.signal_handler(signal.SIGTERM, _stop_shape_on_sigterm, environment)


@events.init.add_listener
def _on_init_buckets(**_kwargs) -> None:
    """Locust's own table, charts and CSV in three significant figures, not whole ms
    (``bench.load.buckets``): in every process, as each worker buckets what it sends."""
    buckets.install()


def _stop_shape_on_sigterm(environment) -> None:
    """Locust (2.47) joins a shape run in headless mode before it installs its own SIGTERM
    handler, so a SIGTERM then kills it with no results. Ending the shape instead lets Locust
    shut down as at the end of a run: quit events fire, the results are written (``partial``)."""
    greenlet = getattr(environment.runner, "shape_greenlet", None)
    if greenlet is not None and not greenlet.dead:
        logging.info("SIGTERM: stopping the run; its results will be marked partial")
        greenlet.kill(block=False)


@events.request.add_listener
def _on_request(name, response_time, response=None, context=None, exception=None, **_kwargs) -> None:
    if _harness is None:
        return
    meta = (context or {}).get("usbench")
    recorder = _harness.recorder
    if meta is None:  # a request from some other user class: count it here
        recorder.note_sent(name)
        meta = {"endpoint": name}
    recorder.record(
        meta["endpoint"],
        status_code=getattr(response, "status_code", 0) or 0,
        response_time_ms=response_time or 0.0,
        headers=getattr(response, "headers", None),
        wall_second=int(time.time()),
        lag_ns=meta.get("lag_ns"),
        verify_failed=bool(meta.get("verify_failed")),
    )


@events.report_to_master.add_listener
def _on_report_to_master(client_id, data, **_kwargs) -> None:
    if _harness is None:
        return
    runner = _harness.environment.runner
    data["usbench"] = _harness.recorder.drain(final=runner is not None and runner.state == "stopped")
    data["usbench_priority"] = _harness.priority.phrase()


@events.worker_report.add_listener
def _on_worker_report(client_id, data, **_kwargs) -> None:
    if _harness is not None and "usbench" in data:
        _harness.recorder.add_payload(client_id, data["usbench"])
        if "usbench_priority" in data:
            _harness.worker_priorities[client_id] = data["usbench_priority"]


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    if _harness is None or isinstance(environment.runner, WorkerRunner):
        return
    status = _harness.document().verdict.status
    _harness.exit_verdict = status
    environment.process_exit_code = EXIT_CODES[status]


@events.quit.add_listener
def _on_quit(exit_code, **_kwargs) -> None:
    if _harness is None or isinstance(_harness.environment.runner, WorkerRunner):
        return
    document = _harness.document()
    path = write_json_atomic(_harness.config.results, document)
    print(console_table(document))
    print(f"results: {path}")
    if _harness.exit_verdict is not None and document.verdict.status != _harness.exit_verdict:
        print(
            f"note: the exit code carries the verdict at shutdown ({_harness.exit_verdict}); reports "
            f"that arrived later make it {document.verdict.status} in {path}"
        )
    sys.stdout.flush()
