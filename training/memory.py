"""The memory a user's function needs: measured, with headroom, rounded to a Lambda size.

A fresh interpreter (``training/memory_child.py``) loads the reference file, makes one
prediction and reports its own peak resident set size (``VmHWM``, see ``memory_child``):
init plus first prediction, the part of a function's footprint the model decides. Not measured:
the runtime interface client and the handler's own imports (a few MB; see the headroom), and
the growth of a long-lived process under load.

The size: ``peak × 1.5 + 32 MB`` (the 1.5 for allocations the first prediction does not make
and allocator slack, the 32 MB for the runtime client and the handler), rounded UP to a multiple
of 64 MB, within Lambda's range of 128 to 10,240 MB ("You can configure memory between 128 MB
and 10,240 MB in 1-MB increments", https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
Any whole MB is valid; 64 MB steps keep a few MB of RSS noise between two runs of the same
model from moving the default size (and the CPU share Lambda gives with it).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.load import ModelFileError

HEADROOM_FACTOR = 1.5
HEADROOM_MB = 32
STEP_MB = 64
LAMBDA_MIN_MB = 128
LAMBDA_MAX_MB = 10_240
CHILD = Path(__file__).with_name("memory_child.py")
TIMEOUT_S = 300


@dataclass(frozen=True)
class MemoryEstimate:
    peak_rss_mb: float
    memory_size_mb: int

    def to_dict(self) -> dict:
        return {
            "peak_rss_mb": self.peak_rss_mb,
            "memory_size_mb": self.memory_size_mb,
            "headroom": f"x{HEADROOM_FACTOR} + {HEADROOM_MB} MB, rounded up to {STEP_MB} MB",
        }


def lambda_size(peak_rss_mb: float) -> int:
    """The memory size for a measured peak, per the module's rule."""
    wanted = peak_rss_mb * HEADROOM_FACTOR + HEADROOM_MB
    size = math.ceil(wanted / STEP_MB) * STEP_MB
    return int(min(max(size, LAMBDA_MIN_MB), LAMBDA_MAX_MB))


def measure(
    model_file: Path,
    fmt: str,
    first_row: dict,
    code_dir: Path | None = None,
    trusted: list[str] | None = None,
) -> MemoryEstimate:
    """Peak RSS of a fresh process loading ``model_file`` and predicting ``first_row`` once.

    ``first_row``: ``{"columns", "row", "types", "named", "proba"}`` (see ``memory_child``)."""
    with tempfile.TemporaryDirectory(prefix="training-memory-") as folder:
        row_file = Path(folder) / "row.json"
        row_file.write_text(json.dumps({**first_row, "trusted": trusted or []}))
        command = [sys.executable, str(CHILD), str(model_file), fmt, str(row_file)]
        if code_dir is not None:
            command.append(str(code_dir))
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:  # subprocess.run kills the child on timeout
            raise ModelFileError(f"loading the model in a fresh process took over {TIMEOUT_S} s") from exc
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines() or [f"exit code {completed.returncode}"]
        raise ModelFileError(f"the model does not load and predict in a fresh process: {lines[-1]}")
    peak_mb = round(json.loads(completed.stdout.strip().splitlines()[-1])["peak_rss_kib"] / 1024, 1)
    return MemoryEstimate(peak_rss_mb=peak_mb, memory_size_mb=lambda_size(peak_mb))
