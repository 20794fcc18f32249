"""The handler variants by name: used by the emulator's config, the benchmarks and the results.

Standard library only, so that any tool can list variants without importing a model library.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from handler.artifacts import ARTIFACT_BY_FORMAT

SEED_HANDLER = "handler.seed.lambda_handler"
APP_HANDLER = "handler.app.lambda_handler"


@dataclass(frozen=True)
class Variant:
    name: str
    handler: str
    model_format: str
    input_path: str
    requires: tuple[str, ...] = ()

    @property
    def artifact(self) -> str:
        return ARTIFACT_BY_FORMAT[self.model_format]

    @property
    def function_name(self) -> str:
        """The emulator's function name: the tutorial keeps its own, the rest ``logit-<name>``."""
        return "logitModel" if self.name == "tutorial" else f"logit-{self.name}"

    def available(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.requires)

    def environment(self, models_dir: str) -> dict[str, str]:
        """The Lambda environment variables that select this variant."""
        env = {"MODEL_URI": f"{models_dir.rstrip('/')}/{self.artifact}"}
        if self.handler == APP_HANDLER:
            env["MODEL_FORMAT"] = self.model_format
            env["INPUT_PATH"] = self.input_path
        return env


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant("tutorial", SEED_HANDLER, "joblib", "pandas"),
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


def available_variants() -> list[Variant]:
    return [variant for variant in VARIANTS.values() if variant.available()]


def select(names: str) -> list[Variant]:
    """``all`` or a comma-separated list of names; ValueError naming an unknown one."""
    if names.strip() == "all":
        return available_variants()
    chosen = []
    for name in (part.strip() for part in names.split(",") if part.strip()):
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}: expected one of {', '.join(VARIANTS)}")
        chosen.append(VARIANTS[name])
    if not chosen:
        raise ValueError("no variant selected")
    return chosen
