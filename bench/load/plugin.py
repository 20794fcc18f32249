"""The Locust plugin: options, and the event hooks that record µs and write the results.

Imported by ``locustfile.py``; works with every standard Locust flag (``--headless -u -r -t``,
``--processes N``, ``--master``/``--worker``, the web UI). Hooks, as Locust plugins do:

- ``init_command_line_parser``: our options (see :func:`bench.load.options.add_options`).
- ``init``: validates them (a bad value: one line on stderr, exit 2), makes this process's
  :class:`bench.load.harness.Harness` and adds a web UI tab; in every process, finer
  response-time buckets for Locust's own screens (``bench.load.buckets``).
- ``request``: every finished request into :class:`bench.load.recorder.RunRecorder`, from the
  exact float Locust carries (not its whole-millisecond buckets).
- ``report_to_master`` / ``worker_report``: workers ship encoded histograms and counters; the
  master adds them up.
- ``quitting``: the verdict sets the exit code (0 PASS, 1 FAIL, 3 INVALID).
- ``quit``: after the workers' last reports, the results JSON (atomically) and a µs table.

The user and the load shape (``LambdaUser``, ``ScenarioShape``) live in :mod:`bench.load.user`
and are re-exported here for ``locustfile.py``; the per-process state in :mod:`bench.load.harness`.
"""

from __future__ import annotations

import logging
import signal
import sys
import time

import gevent
from locust import events
from locust.runners import WorkerRunner

from bench.load import buckets
from bench.load.harness import Harness, current, set_current
from bench.load.options import OptionError, add_options, config_from
from bench.load.results import console_table
from bench.load.user import LambdaUser, ScenarioShape
from bench.results import write_json_atomic
from bench.verdict import EXIT_CODES

__all__ = ["LambdaUser", "ScenarioShape"]


@events.init_command_line_parser.add_listener
def _on_parser(parser, **_kwargs) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    if environment.parsed_options is None:
        return
    try:
        state = set_current(Harness(environment, config_from(environment.parsed_options)))
    except OptionError as error:
        sys.stderr.write(f"locust: {error}\n")
        sys.exit(2)
    except (OSError, ImportError) as error:
        sys.stderr.write(f"locust: --verify needs the local model: {error}\n")
        sys.exit(2)
    logging.info("generator priority: %s", state.priority.phrase())
    if environment.web_ui is not None:
        from bench.load.webui import install

        install(environment, lambda: current().recorder if current() is not None else None)
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
    state = current()
    if state is None:
        return
    meta = (context or {}).get("usbench")
    recorder = state.recorder
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
    state = current()
    if state is None:
        return
    runner = state.environment.runner
    data["usbench"] = state.recorder.drain(final=runner is not None and runner.state == "stopped")
    data["usbench_priority"] = state.priority.phrase()


@events.worker_report.add_listener
def _on_worker_report(client_id, data, **_kwargs) -> None:
    state = current()
    if state is not None and "usbench" in data:
        state.recorder.add_payload(client_id, data["usbench"])
        if "usbench_priority" in data:
            state.worker_priorities[client_id] = data["usbench_priority"]


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    state = current()
    if state is None or isinstance(environment.runner, WorkerRunner):
        return
    status = state.document().verdict.status
    state.exit_verdict = status
    environment.process_exit_code = EXIT_CODES[status]


@events.quit.add_listener
def _on_quit(exit_code, **_kwargs) -> None:
    state = current()
    if state is None or isinstance(state.environment.runner, WorkerRunner):
        return
    document = state.document()
    path = write_json_atomic(state.config.results, document)
    print(console_table(document))
    print(f"results: {path}")
    if state.exit_verdict is not None and document.verdict.status != state.exit_verdict:
        print(
            f"note: the exit code carries the verdict at shutdown ({state.exit_verdict}); reports "
            f"that arrived later make it {document.verdict.status} in {path}"
        )
    sys.stdout.flush()
