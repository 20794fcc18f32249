"""One pass/fail record for every tool: a :class:`Gate` says what was checked against what.

Every verdict in the project — a latency percentile against a target (with the early-stopping
rule of ``bench.verdict``), an error share, a schedule kept, a fuzzing rule, a fault answered
as AWS answers it — is a Gate: the field checked, the value observed, the threshold, the
samples behind it, the status and a message that names them all. Results carry their gates;
``reports`` formats them and decides nothing itself.

Statuses: ``PASS``; ``FAIL`` (the function missed the threshold); ``INVALID`` (the run cannot
tell: too few samples, or the harness itself could not do its job). Exit codes: 0, 1, 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.results.core import Record

PASS, FAIL, INVALID = "PASS", "FAIL", "INVALID"
STATUSES = (PASS, FAIL, INVALID)
EXIT_CODES = {PASS: 0, FAIL: 1, INVALID: 3}


@dataclass(frozen=True)
class Gate(Record):
    """``name`` (the field checked, e.g. ``staging/logit-lean e2e_us p99``) ``observed`` against
    ``threshold`` in ``unit``; ``samples`` behind ``observed``; ``message`` is the one line a
    user reads. ``details`` holds figures specific to the check (e.g. the early-stopping bound's
    ``over_target``, ``percentile``, ``confidence``, ``samples_needed``)."""

    name: str
    status: str
    observed: float | None
    threshold: float | None
    unit: str
    samples: int
    message: str
    details: dict = field(default_factory=dict)
    check: str = ""  # what kind of check: "errors", "latency", "schedule", "contention", ...

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"gate status must be one of {STATUSES}, not {self.status!r}")

    @property
    def passed(self) -> bool:
        return self.status == PASS


def check(name: str, observed: float, threshold: float, unit: str, samples: int, *, at_most: bool = True,
          invalid: bool = False, what: str = "") -> Gate:  # fmt: skip
    """A plain comparison: ``observed <= threshold`` (or ``>=`` with ``at_most=False``)."""
    ok = observed <= threshold if at_most else observed >= threshold
    status = INVALID if invalid else (PASS if ok else FAIL)
    sign = ("≤" if ok else ">") if at_most else ("≥" if ok else "<")
    claim = f"{name} = {observed:,.1f} {unit} {sign} {threshold:,.1f} {unit}" + (f" ({what})" if what else "")
    return Gate(name, status, observed, threshold, unit, samples, f"{status}: {claim}")


def goal(name: str, met: bool, measured: str, wanted: str, samples: int = 0, check: str = "goal") -> Gate:
    """A goal stated in words (the hardening tools'): ``measured`` against ``wanted``."""
    status = PASS if met else FAIL
    return Gate(
        name, status, None, None, "", samples, f"{status}: {name}: {measured} (goal: {wanted})", check=check
    )


# Which checks speak for the harness rather than the function: when one of them is not PASS,
# the function's latency figures measure the harness too, and the run is INVALID.
HARNESS_CHECKS = ("schedule", "contention", "floor")


def judge(gates: list[Gate]) -> str:
    """A run's status from its gates: failed requests FAIL it whatever else happened (they are
    the function's own answers); else a harness check that is not PASS makes it INVALID (its
    latency figures measure the harness as much as the function); else :func:`combine`."""
    if any(gate.check == "errors" and gate.status == FAIL for gate in gates):
        return FAIL
    if any(gate.check in HARNESS_CHECKS and gate.status != PASS for gate in gates):
        return INVALID
    return combine([gate.status for gate in gates])


def ordered(gates: list[Gate]) -> list[Gate]:
    """Gates in the order a reader needs them: errors first, then the harness, then the rest."""
    rank = {"errors": 0, **dict.fromkeys(HARNESS_CHECKS, 1)}
    return sorted(gates, key=lambda gate: rank.get(gate.check, 2))


def combine(statuses: list[str]) -> str:
    """The run's status: FAIL if any fails, else INVALID if any is invalid, else PASS."""
    if not statuses:
        return INVALID
    if FAIL in statuses:
        return FAIL
    if INVALID in statuses:
        return INVALID
    return PASS
