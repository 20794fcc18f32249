"""The emulator's functions for a models directory, generated from the one list of variants.

``python -m handler.local.functions --models DIR [--out FILE]`` writes the emulator config (TOML)
that serves every variant that applies to the model in DIR (``handler.variants.applicability``;
the others are listed in comments with the reason); ``python -m handler.serve --models DIR``
uses it for a user's model. With no ``--models`` it regenerates ``handler/local/default.toml``,
the tutorial's config (a test checks the file is what this writes). Bad arguments: one line on
stderr, exit 2.

Memory: the tutorial's functions keep their measured sizes (`handler.variants.memory_size`); a user's
function takes the manifest's ``memory.memory_size_mb`` (training measured its peak at init and
first prediction, with headroom), 128 MB for the pure-Python path, 256 MB when not recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from handler import tutorial
from handler.local.config import DEFAULT_CONFIG, ConfigError, EmulatorConfig, load_config
from handler.manifest import FILE_NAME, ManifestError
from handler.manifest import read as read_manifest
from handler.variants import (
    REFERENCE,
    SEED_HANDLER,
    TUTORIAL,
    VARIANTS,
    Applicability,
    applicability,
    memory_size,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
HEADER = """# The emulator's default configuration: `python -m handler.serve` loads it.
# Generated from handler.variants.VARIANTS by `python -m handler.local.functions`: edit that, not this.
# Paths are relative to this file; MODEL_URI is relative to the function's code_dir (its task root).

stage = "staging"
port = 3000
idle_timeout_s = 600
# API Gateway answers a Lambda concurrency throttle with 500 {"message": "Internal server error"};
# set 429 to emulate a Gateway Response that maps it to "Too Many Requests".
lambda_throttle_status = 500

# The resource model (handler/local/resources.py; README, "python -m handler.serve"):
# "auto" (cgroup v2, else v1, else host), "cgroup-v1", "cgroup-v2", or "host" (nothing enforced).
resource_model = "auto"
init_cpu = "boost"        # CPU during init: "boost" (up to 2 vCPUs, as measured on Lambda) or "memory"
freeze = true             # freeze environments between invocations, as Lambda does (false or
                          # --no-freeze: they run on; what the thaw costs: docs/benchmarks.md)
contention_factor = 1.5   # wall / CPU-at-share over which a phase on a saturated host is "contended"

# memory_mb: each function's smallest Lambda-typical size at which it works, with margin, measured
# (docs/benchmarks.md, "Resource model"; Max Memory Used in the comments). The tutorial's function
# needs 166 MB, so it runs at 256: at 128 MB it fails with Runtime.OutOfMemory, as on AWS. The
# CPU share follows memory (memory_mb / 1769 vCPU): 128 MB is 0.072 vCPU, 256 MB 0.145.

[throttle]          # the stage's token bucket (API Gateway's default is 10,000 req/s, burst 5,000)
rate = 10000
burst = 5000

# [[api_keys]]      # usage plans: a bucket per key; functions with api_key_required need one
# value = "local-test-key-0123456789"
# rate = 100
# burst = 50

"""
# The floor: a no-op measured beside every Duration (bench.powertune, the cold-start profiler).
FLOOR_FUNCTION = """
[[functions]]       # the floor: a no-op (bench/floorfunction), measured beside every Duration
name = "floor-noop"
handler = "noop.handler"
code_dir = {code_dir}
memory_mb = 128           # its Max Memory Used: docs/benchmarks.md, "The floor beside every Duration"
"""


def _string(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for these values


def _function(entry: Applicability, name: str, code_dir: str, uri: str, memory: tuple[int, str]) -> str:
    variant = entry.variant
    comment = {
        "tutorial": "       # the tutorial's function as published",
        "onnx": "       # only when onnxruntime is installed (the `onnx` extra)",
    }.get(variant.name, "")
    lines = ["[[functions]]" + comment, f"name = {_string(name)}", f"handler = {_string(variant.handler)}"]
    lines.append(f"code_dir = {_string(code_dir)}")
    lines.append(
        f"memory_mb = {memory[0]:<14}# {memory[1]}".rstrip() if memory[1] else f"memory_mb = {memory[0]}"
    )
    if variant.handler == SEED_HANDLER:
        lines += ["timeout_s = 3", "reserved_concurrency = 10"]
    if variant.requires:
        lines.append(f"requires = [{', '.join(map(_string, variant.requires))}]")
    lines += ["[functions.env]", f"MODEL_URI = {_string(uri)}"]
    if variant.handler != SEED_HANDLER:
        lines += [
            f"MODEL_FORMAT = {_string(entry.model_format or '')}",
            f"INPUT_PATH = {_string(variant.input_path)}",
        ]
    return "\n".join(lines) + "\n"


def tutorial_config_text() -> str:
    """``handler/local/default.toml``: every variant of the tutorial's model (files ``logit.*``),
    paths relative to the file (code_dir ``../..``, MODEL_URI ``models/<file>``)."""
    parts = [HEADER]
    for variant in VARIANTS.values():
        if variant.name == REFERENCE:
            continue
        entry = Applicability(variant, variant.artifact, variant.model_format, None)
        uri = f"models/{variant.artifact}"
        parts.append(
            ("" if variant.name == TUTORIAL else "\n")
            + _function(entry, variant.function_name, "../..", uri, memory_size(variant, None))
        )
    parts.append(FLOOR_FUNCTION.format(code_dir=_string("../../bench/floorfunction")))
    return "".join(parts)


def config_text(models_dir: Path) -> str:
    """The emulator config serving every variant that applies to the model in ``models_dir``
    (absolute paths, so the file can live anywhere); the others in comments, with the reason.
    ManifestError when the directory's manifest cannot be read."""
    manifest = read_manifest(models_dir / FILE_NAME)
    parts = [HEADER]
    skipped = []
    for entry in applicability(models_dir):
        variant = entry.variant
        if entry.reason is not None:
            skipped.append(f"# {entry.describe()}")
            continue
        uri = str(models_dir.resolve() / entry.artifact)
        memory = memory_size(variant, manifest)
        parts.append(
            "\n" + _function(entry, variant.function_name_for(manifest), str(PROJECT_ROOT), uri, memory)
        )
    parts.append(FLOOR_FUNCTION.format(code_dir=_string(str(PROJECT_ROOT / "bench" / "floorfunction"))))
    if skipped:
        parts.append("\n# Variants that do not apply to this model, and why:\n" + "\n".join(skipped) + "\n")
    return "".join(parts)


def config_for_models(config: EmulatorConfig, config_path: Path, models_dir: Path) -> EmulatorConfig:
    """``python -m handler.serve --models DIR``: with the default config and a model that is not the
    tutorial's, the functions generated for DIR; else ``config`` pointed at DIR (same file names).
    ConfigError (one line) when DIR's manifest cannot be read."""
    if Path(config_path).resolve() != DEFAULT_CONFIG.resolve():
        return config.with_models_dir(models_dir)
    try:
        manifest = read_manifest(models_dir / FILE_NAME)
        if tutorial.is_tutorial(manifest.features):
            return config.with_models_dir(models_dir)
        text = config_text(models_dir)
    except ManifestError as exc:
        raise ConfigError(str(exc)) from exc
    handle, name = tempfile.mkstemp(prefix="emulator-", suffix=".toml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        return load_config(Path(name))
    finally:
        os.unlink(name)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handler.local.functions", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--models", type=Path, help="a models directory (default: the tutorial's, into default.toml)"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the config (default: stdout; default.toml without --models)"
    )
    args = parser.parse_args(argv)
    try:
        if args.models is None:
            _write_atomically(args.out or DEFAULT_CONFIG, tutorial_config_text())
            return 0
        text = config_text(args.models)
    except ManifestError as exc:
        parser.error(str(exc))
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write_atomically(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
