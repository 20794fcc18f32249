"""The results schema: one typed, versioned document per kind, read strictly, written atomically.

Every results file is ``{"kind": ..., "schema_version": N, "metadata": {...}, ...}``, one
frozen dataclass per kind (a :class:`Document` subclass) with its own ``SCHEMA_VERSION``:

======================  ===========================  ==========================================
kind                    class                        written by
======================  ===========================  ==========================================
``inprocess``           ``InprocessRun``             ``python -m bench.inprocess``
``endpoint``            ``EndpointRun``              ``python -m bench.endpoint``
``locust``              ``LocustRun``                ``locust -f locustfile.py --results``
``coldstart``           ``ColdstartRun``             ``python -m bench.coldstart`` (processes)
``coldstart-endpoint``  ``ColdstartEndpointRun``     ``python -m bench.coldstart --function F``
``coldstart-cloudwatch`` ``ColdstartCloudwatchRun``  ``python -m bench.coldstart.cloudwatch``
``fuzz``                ``FuzzRun``                  ``python -m bench.hardening.fuzz``
``faults``              ``FaultsRun``                ``python -m bench.hardening.faults``
``overload``            ``OverloadRun``              ``python -m bench.hardening.overload``
``harness``             ``HarnessRun``               ``python -m bench.truth.check``
``powertune``           ``PowertuneRun``             ``python -m bench.powertune``
``emulator-cost``       ``EmulatorCostRun``          ``python -m bench.emulator_cost``
``fidelity``            ``FidelityRun``              ``python -m bench.fidelity``
``compare``             ``CompareRun``               ``python -m bench.compare``
======================  ===========================  ==========================================
 Durations are in µs unless the field
name says otherwise (``*_ns``, ``*_ms``). Format history, per kind (bump on any incompatible
change; tests/golden/ holds a document of each kind and version):

- inprocess 1, endpoint 1, harness 1: first versions.
- fuzz 2, faults 2, overload 2: verdicts as :class:`Gate` records and a ``status`` (1 had
  ``passed``, and overload ``goals``).
- locust 2: verdicts are :class:`Gate` records (``bench.results.gate``).
- coldstart 2: process mode only, in µs; endpoint mode and CloudWatch are kinds of their own.
- powertune 1: first version.
- emulator-cost 1: first version.
- emulator-cost 2: adds the floor target, bench.truth.proxy (``floor``, ``floor_cpu_ratio``,
  ``floor_e2e_p50_ratio``).
- fidelity 1: first version.
- coldstart 4, coldstart-endpoint 2, coldstart-cloudwatch 2, powertune 3, locust 3: each init
  figure named by what it measures (docs/results.md, "Init figures": ``init_duration_us``,
  ``handler_init_us``, ``start_to_ready_us``, ``init_cpu_us``); the older versions of the first
  four are read with the field renamed (:meth:`Document.upgrade`), locust 2 is not (its
  ``init_us`` mixed two figures in one series).
- fidelity 2: the unthrottled reference after each size's loop too (``unthrottled_after_us``)
  and around each stability round (``reference_us``); version 1 is read with none.
- compare 2: ``side_by_side`` (runs measured together, paired intervals); version 1 is read as
  False.

Records shared beyond one kind: :class:`~bench.results.gate.Gate` (every pass/fail check) and
:class:`~bench.results.reportline.ReportLine` (Lambda's REPORT line: the emulator writes it,
``bench`` parses it, cold-start and power-tuning results store it).

``reports`` imports this package and nothing else of ``bench``; the package reaches nothing of
the project beyond the record types it is built from (``bench.records``, ``bench.latency``,
``bench.stats``), which ``tests/test_layout.py`` checks.
"""

from __future__ import annotations

from pathlib import Path

from bench.latency import LatencySummary, Series
from bench.results.compare import CompareRun
from bench.results.coldstart import ColdstartCloudwatchRun, ColdstartEndpointRun, ColdstartRun
from bench.results.core import (
    KINDS,
    Document,
    Record,
    ResultsError,
    document_from_dict,
    read_document,
    write_atomic,
    write_json_atomic,
)
from bench.results.emulatorcost import EmulatorCostRun
from bench.results.fidelity import FidelityRun
from bench.results.gate import EXIT_CODES, FAIL, INVALID, PASS, Gate, combine
from bench.results.hardening import FaultsRun, FuzzRun, OverloadRun
from bench.results.harness import HarnessRun
from bench.results.kinds import EndpointRun, InprocessRun, LocustRun
from bench.results.metadata import PROJECT_ROOT, Metadata, cpu_idle_phrase, utc_stamp
from bench.results.powertune import PowertuneRun
from bench.results.reportline import ReportLine
from bench.stats import TrialStats

__all__ = [
    "EXIT_CODES",
    "FAIL",
    "INVALID",
    "KINDS",
    "PASS",
    "PROJECT_ROOT",
    "ColdstartCloudwatchRun",
    "ColdstartEndpointRun",
    "ColdstartRun",
    "CompareRun",
    "Document",
    "EmulatorCostRun",
    "EndpointRun",
    "FaultsRun",
    "FidelityRun",
    "FuzzRun",
    "Gate",
    "HarnessRun",
    "InprocessRun",
    "LatencySummary",
    "LocustRun",
    "Metadata",
    "OverloadRun",
    "PowertuneRun",
    "Record",
    "ReportLine",
    "ResultsError",
    "Series",
    "TrialStats",
    "combine",
    "cpu_idle_phrase",
    "document_from_dict",
    "read_document",
    "read_results",
    "utc_stamp",
    "write_atomic",
    "write_json_atomic",
]


def read_results(path: Path) -> dict:
    """Read a results file, check it against its kind's schema, and return it as plain JSON."""
    return read_document(path).to_dict()
