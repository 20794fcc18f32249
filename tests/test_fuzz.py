"""Fuzzing: bench.hardening.fuzz's campaigns, bounded for CI, and the rules they enforce.

The benchmark run (>= 10,000 cases per campaign) is ``python -m bench.hardening.fuzz``; figures in
docs/reliability.md. Here: 300 cases each, in a subprocess as a user runs it, plus proof that
the rules and the campaign do fail on a broken answer, plus the edge cases the fuzzer reaches
only by luck (bodies over API Gateway's and Lambda's limits).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from bench.hardening.fuzz import fuzz_handlers, log_problems, send
from bench.hardening.fuzzcases import HttpCase, check_handler_reply, check_http_answer
from handler.features import TUTORIAL_QUERY
from tests.conftest import run_module

CI_CASES = 300
TUTORIAL_PATH = "/staging/logit-lean?" + urllib.parse.urlencode(TUTORIAL_QUERY)


@pytest.mark.slow
def test_both_campaigns_pass_and_account_for_every_case(models_dir: Path, tmp_path: Path):
    results = tmp_path / "fuzz.json"
    completed = run_module(
        "bench.hardening.fuzz",
        "--cases",
        str(CI_CASES),
        "--models",
        str(models_dir),
        "--results",
        str(results),
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    document = json.loads(results.read_text())
    assert document["kind"] == "fuzz" and document["status"] == "PASS"
    handler, gateway = document["campaigns"]
    assert handler["surface"] == "handler" and handler["variants"] == ["lean", "numpy", "pandas"]
    assert handler["cases"] == CI_CASES
    assert sum(handler["outcomes"].values()) == CI_CASES * 3  # every case, every variant
    assert set(handler["outcomes"]) <= {"200", "400"}
    assert gateway["cases"] == CI_CASES and sum(gateway["outcomes"].values()) == CI_CASES
    assert all(int(status) < 500 for status in gateway["outcomes"])
    assert gateway["checks"] == {
        "every answer 2xx/4xx JSON": True,
        "no traceback or environment death in the logs": True,
        "the first environment served to the end": True,
    }


def test_the_rules_reject_broken_answers():
    case = HttpCase("GET", TUTORIAL_PATH, (), b"", prediction_request=True)
    assert check_http_answer(case, 200, "application/json", b'{"prediction": 0.1}') == []
    assert check_http_answer(case, 502, "application/json", b'{"message": "x"}')
    assert check_http_answer(case, 400, "application/json", b'{"error": "x"}')  # valid yet refused
    odd = HttpCase("BREW", "/", (), b"")
    assert check_http_answer(odd, 400, "text/plain; charset=utf-8", b"Bad Request")
    assert check_http_answer(odd, 400, "application/json", b"[1]")
    assert check_handler_reply({}, {"statusCode": 500, "body": "{}"}, None)
    assert check_handler_reply(
        {}, {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "x"}, None
    )
    ok = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"prediction": 0.25}'}
    assert check_handler_reply({}, ok, 0.25) == []
    assert check_handler_reply({}, ok, 0.5)  # not the model's prediction


@pytest.mark.slow
def test_a_campaign_finds_and_reports_a_handler_that_crashes(models_dir: Path):
    def fragile(event, context):  # the tutorial's style: trusts its input
        params = event["queryStringParameters"]
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": str(len(params))}

    coefficients = json.loads((models_dir / "logit.json").read_text())
    campaign = fuzz_handlers({"fragile": fragile}, coefficients, cases=200, seed=1)
    assert campaign.failure is not None
    assert not campaign.passed


def test_log_problems_sees_a_traceback_and_an_environment_death(tmp_path: Path):
    clean, dirty = tmp_path / "clean.log", tmp_path / "dirty.log"
    clean.write_text("[logit-lean] REPORT RequestId: x\tDuration: 1.00 ms\n")
    dirty.write_text("Traceback (most recent call last):\n  File ...\n[f] environment 3 exit status 1\n")
    assert log_problems([clean]) == []
    assert log_problems([dirty]) == ["dirty.log: 1 traceback(s)", "dirty.log: 1 environment death(s)"]


def _answer(emulator, case: HttpCase) -> tuple[int, dict]:
    status, content_type, body = send(emulator.base_url, case)
    assert content_type.startswith("application/json"), (status, content_type, body[:200])
    return status, json.loads(body)


@pytest.mark.slow
def test_a_body_over_api_gateways_10_mb_is_a_json_413(emulator):
    status, document = _answer(emulator, HttpCase("POST", TUTORIAL_PATH, (), b"x" * (10 * 2**20 + 1)))
    assert (status, document) == (413, {"message": "Request Too Long"})


@pytest.mark.slow
def test_an_event_over_lambdas_6_mb_is_a_json_413_at_the_gateway_and_the_invoke_api(emulator):
    status, document = _answer(emulator, HttpCase("POST", TUTORIAL_PATH, (), b"x" * (7 * 2**20)))
    assert (status, document) == (413, {"message": "Request Too Long"})
    invoke = HttpCase(
        "POST", "/2015-03-31/functions/logit-lean/invocations", (), b'"' + b"x" * 7 * 2**20 + b'"'
    )
    status, document = _answer(emulator, invoke)
    assert status == 413 and "smaller than 6291456 bytes" in document["message"]


@pytest.mark.slow
def test_requests_the_http_parser_refuses_get_a_json_400(emulator):
    for case in (
        HttpCase("BREW", TUTORIAL_PATH, (), b""),
        HttpCase("GET", TUTORIAL_PATH, (("X-Big", "a" * 20_000),), b""),
        HttpCase("GET", TUTORIAL_PATH + "&pad=" + "1" * 20_000, (), b""),
    ):
        status, document = _answer(emulator, case)
        assert (status, document) == (400, {"message": "Bad Request"}), case.describe()
    # and the server still answers on a new connection
    assert send(emulator.base_url, HttpCase("GET", TUTORIAL_PATH, (), b""))[0] == 200


@pytest.mark.slow
def test_a_10_kb_value_and_header_reach_the_handler_and_get_its_400(emulator):
    query = dict(TUTORIAL_QUERY, G3="9" * 10_240)
    case = HttpCase(
        "GET", "/staging/logit-lean?" + urllib.parse.urlencode(query), (("X-Note", "n" * 10_240),), b""
    )
    status, document = _answer(emulator, case)
    assert status == 400
    assert document["details"] == {"G3": "is longer than 32 characters"}
