"""Lambda's REPORT line as the emulator writes it, and the emulator's own line after it.

The REPORT line's figures are a results record, :class:`bench.results.reportline.ReportLine`
(``bench`` parses the line back, ``bench.reportline``); the emulator builds one per invocation
(``ReportLine.measured`` bills it as Lambda does) and writes it here (:func:`format_report`),
as Lambda writes it to CloudWatch Logs. Form, fields separated by tabs, as captured from Lambda
in 2026 (python3.12; see ``docs/conformance.md``)::

    REPORT RequestId: <id>\\tDuration: 2.37 ms\\tBilled Duration: 427 ms\\tMemory Size: 1024 MB\\t
    Max Memory Used: 95 MB\\tInit Duration: 423.98 ms\\t

``Init Duration`` on cold starts only. A line that ends normally ends with a tab; a line for
an invocation that timed out or failed in the runtime ends with ``Status: timeout`` or
``Status: error\\tError Type: Runtime.OutOfMemory`` and no trailing tab.

:class:`EmulatorLine` is the emulator's own line, written right after each REPORT line (log file,
console, ``LogType=Tail``): the CPU time beside the wall time, the CPU share the environment was
allowed and whether a phase was slowed by a saturated host (``handler.local.resources``). It
is not an AWS line; a tool that reads CloudWatch never sees one.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from bench.results.reportline import ReportLine


def format_report(report: ReportLine) -> str:
    """The REPORT line for ``report``, as Lambda writes it."""
    text = (
        f"REPORT RequestId: {report.request_id}\tDuration: {report.duration_ms:.2f} ms\t"
        f"Billed Duration: {report.billed_duration_ms} ms\tMemory Size: {report.memory_size_mb} MB\t"
        f"Max Memory Used: {report.max_memory_used_mb} MB\t"
    )
    if report.init_duration_ms is not None:
        text += f"Init Duration: {report.init_duration_ms:.2f} ms\t"
    if report.status is not None:
        text += f"Status: {report.status}"
        if report.error_type is not None:
            text += f"\tError Type: {report.error_type}"
    return text


_EMULATOR_REQUEST_ID = re.compile(r"EMULATOR RequestId: (\S+)")
_EMULATOR_FIELD = re.compile(r"\t(Init CPU|Duration CPU|CPU share|Init CPU policy|Contended): ([^\t]*)")
_CONTENDED = re.compile(r"(init|invoke) ([0-9.]+)x")


@dataclass(frozen=True)
class EmulatorLine:
    """The emulator's line after a REPORT line: CPU times beside wall times, and contention.

    ``EMULATOR RequestId: <id>\\tInit CPU: 812.30 ms\\tDuration CPU: 0.41 ms\\tCPU share: 0.072 vCPU\\t
    Init CPU policy: boost\\tContended: no``. ``Init CPU`` on cold starts only; a CPU time the
    emulator could not read (the process was gone) is ``n/a``; ``CPU share`` is ``unlimited``
    where nothing enforces one (the host resource model). ``Contended`` is ``no``, ``unknown``
    (no host pressure figures) or the slowed phases with their factors, ``init 2.40x, invoke 1.80x``.
    """

    request_id: str
    duration_cpu_ms: float | None
    cpu_share_vcpus: float | None  # the invocation's allowed share; None: not enforced
    init_cpu_policy: str
    init_cpu_ms: float | None = None  # cold starts only
    contended: tuple[tuple[str, float], ...] | None = ()  # (phase, factor); None: unknown

    def format(self) -> str:
        text = f"EMULATOR RequestId: {self.request_id}\t"
        if self.init_cpu_ms is not None:
            text += f"Init CPU: {self.init_cpu_ms:.2f} ms\t"
        text += f"Duration CPU: {_ms(self.duration_cpu_ms)}\t"
        share = "unlimited" if self.cpu_share_vcpus is None else f"{self.cpu_share_vcpus:.3f} vCPU"
        text += (
            f"CPU share: {share}\tInit CPU policy: {self.init_cpu_policy}\tContended: {self.contended_text()}"
        )
        return text

    def contended_text(self) -> str:
        if self.contended is None:
            return "unknown"
        return ", ".join(f"{phase} {factor:.2f}x" for phase, factor in self.contended) or "no"

    def contended_header(self) -> str | None:
        """``X-Emulator-Contended``: ``init 2.4``, ``invoke 1.8`` (both, comma-separated), ``unknown``;
        None when no phase was contended."""
        if self.contended is None:
            return "unknown"
        return ", ".join(f"{phase} {factor:.1f}" for phase, factor in self.contended) or None

    @classmethod
    def parse(cls, text: str) -> EmulatorLine | None:
        """The first EMULATOR line in ``text`` (a log tail, the emulator's log file), or None."""
        for line in text.splitlines():
            match = _EMULATOR_REQUEST_ID.search(line)
            fields = dict(_EMULATOR_FIELD.findall(line))
            if (
                not match
                or not {"Duration CPU", "CPU share", "Init CPU policy", "Contended"} <= fields.keys()
            ):
                continue
            share, contended = fields["CPU share"], fields["Contended"].strip()
            return cls(
                request_id=match.group(1),
                duration_cpu_ms=_parse_ms(fields["Duration CPU"]),
                cpu_share_vcpus=None if share == "unlimited" else float(share.split()[0]),
                init_cpu_policy=fields["Init CPU policy"],
                init_cpu_ms=_parse_ms(fields["Init CPU"]) if "Init CPU" in fields else None,
                contended=None
                if contended == "unknown"
                else tuple((phase, float(factor)) for phase, factor in _CONTENDED.findall(contended)),
            )
        return None

    def to_dict(self) -> dict:
        return asdict(self)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _parse_ms(text: str) -> float | None:
    return None if text.strip() == "n/a" else float(text.split()[0])
