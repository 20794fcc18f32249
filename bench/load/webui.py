"""A "Latency (microseconds)" tab in Locust's web UI, as in Locust's ``extend_web_ui`` example.

The title is spelled out because the UI upper-cases tab titles: "µs" would become "ΜS" (Greek
capital mu), which reads as milliseconds.

The tab's table is filled from the ``extended_stats`` that we append to the UI's periodic
``/stats/requests`` poll: per endpoint, the µs percentiles of the end-to-end and in-handler
histograms (on a master, the sum of the workers' reports so far) and the outcome counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from bench.load.recorder import RunRecorder

TAB_KEY = "latency-us"
TAB_TITLE = "Latency (microseconds)"
COLUMNS = (
    ("name", "Endpoint"),
    ("sent", "Sent"),
    ("ok", "2xx"),
    ("errors", "Errors"),
    ("cold_starts", "Cold starts"),
    ("p50_us", "p50 µs"),
    ("p90_us", "p90 µs"),
    ("p99_us", "p99 µs"),
    ("p999_us", "p99.9 µs"),
    ("max_us", "max µs"),
    ("handler_p50_us", "in-handler p50 µs"),
    ("handler_p99_us", "in-handler p99 µs"),
)


def rows(recorder: RunRecorder) -> list[dict]:
    table = []
    for name, record in sorted(recorder.endpoints.items()):
        e2e = record.series["e2e"].summary()
        handler = record.series["handler"].summary()
        sent = record.counters["sent"]
        ok = record.outcomes["2xx"]
        table.append(
            {
                "name": name,
                "safe_name": name,
                "sent": sent,
                "ok": ok,
                "errors": sum(record.outcomes.values())
                - ok
                - record.outcomes["cancelled"]
                + record.counters["verify_failures"],
                "cold_starts": record.series["cold_e2e"].count,
                "p50_us": e2e.p50,
                "p90_us": e2e.p90,
                "p99_us": e2e.p99,
                "p999_us": e2e.p999,
                "max_us": e2e.max,
                "handler_p50_us": handler.p50,
                "handler_p99_us": handler.p99,
            }
        )
    return table


def install(environment, recorder: Callable[[], RunRecorder | None]) -> None:
    from flask import request

    web_ui = environment.web_ui
    web_ui.template_args["extended_tabs"] = [{"title": TAB_TITLE, "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in COLUMNS]}
    ]

    @web_ui.app.after_request
    def _extend_stats(response):
        current = recorder()
        if request.path != "/stats/requests" or current is None or response.json is None:
            return response
        extended = [{"key": TAB_KEY, "data": rows(current)}]
        response.set_data(json.dumps({**response.json, "extended_stats": extended}))
        return response
