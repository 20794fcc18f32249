"""What Locust runs: the Lambda endpoint user (closed or open loop, ``--requests`` lines or the
tutorial's features, ``--verify``) and the load shape that follows ``--scenario``.

Both reach this process's state through :func:`bench.load.harness.harness`; what they send is
recorded by the plugin's ``request`` hook (:mod:`bench.load.plugin`), from the ``usbench``
context each request carries.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict
from urllib.parse import urlencode

import gevent
from gevent.pool import Pool
from locust import FastHttpUser, LoadTestShape, constant, task

from bench.load.arrivals import intended_instants, wait_until
from bench.load.harness import harness
from bench.load.options import prediction_of, random_query
from bench.load.scenarios import options_from, plan, stage_at
from bench.requests import RequestLine, Sampler, http_request, matches, prediction
from handler.features import TUTORIAL_QUERY

VERIFY_TOLERANCE = 1e-9


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
