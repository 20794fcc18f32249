"""The handler variants: the one list, and which of them apply to a given models directory.

A variant is a handler plus a serialization format and an input path (``handler.predictors``).
:data:`VARIANTS` is the only list of them: the emulator's config (``handler.local.functions``,
which generates ``handler/local/default.toml``), the benchmarks, the packager and the results
all read it. :func:`applicability` says, for a models directory (its ``manifest.json``), which
variants apply and, for each that does not, why (the manifest's ``unavailable`` reason, "the
model has string inputs", a library not installed, ...), so that every tool skips the others
with the reason instead of failing mid-run.

Names: the tutorial's model keeps its function names (``logitModel`` for ``handler.seed``,
``logit-<variant>`` for the rest); a user's model's functions are ``model-<variant>``, its
``reference`` variant serving the user's own file (its format, the pandas path).

Standard library only, so that any tool can list variants without importing a model library.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from handler import tutorial
from handler.artifacts import ARTIFACT_BY_FORMAT
from handler.manifest import FILE_NAME, Manifest, ManifestError
from handler.manifest import read as read_manifest
from handler.predictors import VALID_INPUT_PATHS

SEED_HANDLER = "handler.seed.lambda_handler"
APP_HANDLER = "handler.app.lambda_handler"
REFERENCE = "reference"  # the user's own file: model_format None, resolved from the manifest
TUTORIAL = "tutorial"


@dataclass(frozen=True)
class Variant:
    name: str
    handler: str
    model_format: str | None  # None: the format of the manifest's reference artifact
    input_path: str
    requires: tuple[str, ...] = ()

    @property
    def artifact(self) -> str:
        """The tutorial's file for this variant (``artifact_in`` reads a models dir's manifest)."""
        return ARTIFACT_BY_FORMAT[self.model_format or "joblib"]

    @property
    def function_name(self) -> str:
        """The tutorial's function name: ``logitModel`` for its own handler, else ``logit-<name>``."""
        return "logitModel" if self.name == TUTORIAL else f"logit-{self.name}"

    def function_name_for(self, manifest: Manifest | None) -> str:
        """The function name for a model: the tutorial's names, or ``model-<name>`` for a user's."""
        if manifest is None or tutorial.is_tutorial(manifest.features):
            return self.function_name
        return f"model-{self.name}"

    def available(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.requires)

    def resolve(self, manifest: Manifest | None) -> tuple[str | None, str | None]:
        """(artifact file name, format) for this variant in a directory with ``manifest``."""
        if manifest is None:
            return (None, None) if self.model_format is None else (self.artifact, self.model_format)
        if self.model_format is None:
            name = manifest.file_for("", role="reference")
            return name, manifest.artifacts[name].format if name else None
        name = manifest.file_for(self.model_format)
        return name, self.model_format

    def artifact_in(self, models_dir) -> str:
        """The file this variant serves from ``models_dir`` (from its manifest; else the tutorial's)."""
        name, _ = self.resolve(_manifest_or_none(models_dir))
        return name or self.artifact

    def environment(self, models_dir: str) -> dict[str, str]:
        """The Lambda environment variables that select this variant."""
        manifest = _manifest_or_none(models_dir)
        name, fmt = self.resolve(manifest)
        env = {"MODEL_URI": f"{str(models_dir).rstrip('/')}/{name or self.artifact}"}
        if self.handler == APP_HANDLER:
            env["MODEL_FORMAT"] = fmt or "joblib"
            env["INPUT_PATH"] = self.input_path
        return env


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(TUTORIAL, SEED_HANDLER, "joblib", "pandas"),
        Variant(REFERENCE, APP_HANDLER, None, "pandas"),
        Variant("pandas", APP_HANDLER, "joblib", "pandas"),
        Variant("numpy", APP_HANDLER, "joblib", "numpy"),
        Variant("pickle", APP_HANDLER, "pickle", "numpy"),
        Variant("pickle-pandas", APP_HANDLER, "pickle", "pandas"),
        Variant("skops", APP_HANDLER, "skops", "numpy"),
        Variant("skops-pandas", APP_HANDLER, "skops", "pandas"),
        Variant("lean", APP_HANDLER, "json", "python"),
        Variant("json-numpy", APP_HANDLER, "json", "numpy"),
        Variant("onnx", APP_HANDLER, "onnx", "numpy", requires=("onnxruntime",)),
    )
}
# Every (format, input path) above is one handler.predictors serves.
assert all(
    v.model_format is None or v.input_path in VALID_INPUT_PATHS[v.model_format] for v in VARIANTS.values()
)


@dataclass(frozen=True)
class Applicability:
    """Whether ``variant`` applies to a models directory: its file and format, or why not."""

    variant: Variant
    artifact: str | None
    model_format: str | None
    reason: str | None  # None: it applies

    @property
    def applies(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        return f"{self.variant.name}: {self.reason or self.artifact}"


def _manifest_or_none(models_dir) -> Manifest | None:
    try:
        return read_manifest(os.path.join(str(models_dir), FILE_NAME))
    except ManifestError:
        return None


def _why_not(variant: Variant, manifest: Manifest, name: str | None, fmt: str | None) -> str | None:
    if variant.name == TUTORIAL and not tutorial.is_tutorial(manifest.features):
        first, last = tutorial.FEATURES[0], tutorial.FEATURES[-1]
        return f"only the tutorial's {first}..{last} model (handler.seed, as published)"
    if variant.model_format is None:
        if tutorial.is_tutorial(manifest.features):
            return "the tutorial's model: its reference is the 'tutorial' variant"
        if name is None:
            return "no user's file in the manifest (the model was trained here)"
    if name is None:
        key = "json" if fmt == "json" else fmt
        if key in manifest.unavailable:
            return manifest.unavailable[key]
        return f"no {fmt} artifact in the manifest"
    if variant.input_path != "pandas" and not manifest.numbers_only:
        return "the model has string inputs"
    if variant.input_path in manifest.unavailable:  # e.g. a pipeline that selects columns by name
        return manifest.unavailable[variant.input_path]
    missing = [module for module in variant.requires if importlib.util.find_spec(module) is None]
    if missing:
        return f"{', '.join(missing)} is not installed"
    return None


def applicability(models_dir) -> list[Applicability]:
    """Every variant, in :data:`VARIANTS` order, with its file in ``models_dir`` or why it does not
    apply; ManifestError when the directory's manifest cannot be read."""
    manifest = read_manifest(os.path.join(str(models_dir), FILE_NAME))
    result = []
    for variant in VARIANTS.values():
        name, fmt = variant.resolve(manifest)
        result.append(Applicability(variant, name, fmt, _why_not(variant, manifest, name, fmt)))
    return result


def functions(models_dir) -> dict[str, Applicability]:
    """The emulator's function name of each variant that applies to ``models_dir``, in list order
    (the model's reference first: ``logitModel`` for the tutorial, ``model-reference`` for a user's)."""
    manifest = read_manifest(os.path.join(str(models_dir), FILE_NAME))
    return {
        entry.variant.function_name_for(manifest): entry
        for entry in applicability(models_dir)
        if entry.applies
    }


def applicable(models_dir) -> list[Variant]:
    return [entry.variant for entry in applicability(models_dir) if entry.applies]


def available_variants(models_dir=None) -> list[Variant]:
    """The variants that apply to ``models_dir``; without one, the tutorial's that are installed."""
    if models_dir is not None:
        return applicable(models_dir)
    return [variant for variant in VARIANTS.values() if variant.name != REFERENCE and variant.available()]


def select(names: str, models_dir=None) -> list[Variant]:
    """``all`` or a comma-separated list of names; ValueError naming an unknown one."""
    if names.strip() == "all":
        return available_variants(models_dir)
    chosen = []
    for name in (part.strip() for part in names.split(",") if part.strip()):
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}: expected one of {', '.join(VARIANTS)}")
        chosen.append(VARIANTS[name])
    if not chosen:
        raise ValueError("no variant selected")
    return chosen


# The tutorial's functions: memory_mb and the measurement behind it (docs/benchmarks.md,
# "Resource model": Max Memory Used at 1,024 MB on AWS, and here).
TUTORIAL_MEMORY = {
    "tutorial": (256, "Max Memory Used 166 MB at 1,024 MB, 154 here"),
    "pandas": (256, "Max Memory Used 167 MB at 1,024 MB, 155 here"),
    "numpy": (256, "Max Memory Used 164 MB at 1,024 MB, 153 here"),
    "pickle": (256, "Max Memory Used 164 MB at 1,024 MB, 153 here"),
    "pickle-pandas": (256, "Max Memory Used 167 MB at 1,024 MB, 155 here"),
    "skops": (256, "Max Memory Used 186 MB at 1,024 MB, 174 here"),
    "skops-pandas": (256, "Max Memory Used 188 MB at 1,024 MB, 176 here"),
    "lean": (128, "Max Memory Used 19 MB at 1,024 MB, 19 here"),
    "json-numpy": (128, "Max Memory Used 36 MB at 1,024 MB, 32 here"),
    "onnx": (128, "Max Memory Used 67 MB at 1,024 MB, 63 here"),
}
DEFAULT_USER_MEMORY_MB = 256


def memory_size(variant: Variant, manifest: Manifest | None) -> tuple[int, str]:
    """A function's default memory size (MB) and why: the tutorial's measured sizes; for a user's
    model the manifest's (training measured its peak at init and first prediction, with
    headroom), 128 MB for the pure-Python / numpy path, never a blind 128 for scikit-learn."""
    if manifest is None or tutorial.is_tutorial(manifest.features):
        return TUTORIAL_MEMORY.get(variant.name, TUTORIAL_MEMORY[TUTORIAL])
    if variant.model_format == "json":
        return 128, "the pure-Python / numpy path: no scikit-learn"
    if manifest.memory_size_mb:
        return manifest.memory_size_mb, "from the manifest: peak at init + first prediction, with headroom"
    return DEFAULT_USER_MEMORY_MB, "not measured (no memory in the manifest)"
