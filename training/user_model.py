"""``python -m training --model FILE --sample CSV``: a user's fitted estimator, in every format.

The order matters for what a failure leaves behind: the file is read and hashed, loaded, the
sample checked against it and predicted on, and only then is anything written (into a staging
directory, swapped into place when complete). A model file is code: the caller prints so, with
the file's sha256, before :func:`build` loads it.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.export import library_versions, staged
from training.layout import Reference, RequestPlan, write_layout
from training.load import LoadedModel, ModelFileError, load_model
from training.sample import Sample, as_model_input, load_sample
from training.schema import outputs, task_of
from training.variants import Checked


class SampleRefused(ModelFileError):
    """The model does not predict on the sample; the message is the model's, in one line."""


@dataclass(frozen=True)
class UserModelConfig:
    model: Path
    sample: Path
    out_dir: Path
    label: str | None = None
    code_dir: Path | None = None
    plan: RequestPlan = field(default_factory=RequestPlan)


def reference_answers(estimator: object, task: dict, model_input: object) -> np.ndarray:
    """The model's answers on the sample, or :class:`SampleRefused` with its message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a convergence note; the answers are what we check
            answers = outputs(estimator, task, model_input)
    except ModelFileError:
        raise
    except Exception as exc:  # the estimator raises whatever its input validation raises
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise SampleRefused(f"the model refuses the sample: {type(exc).__name__}: {text[:400]}") from exc
    if not np.all(np.isfinite(answers)):
        raise SampleRefused("the model answers NaN or infinity on the sample")
    return answers


def check(loaded: LoadedModel, config: UserModelConfig) -> tuple[Checked, Sample]:
    """The sample checked against the model, and the model's answers on it."""
    sample = load_sample(config.sample, loaded.estimator, config.label)
    task = task_of(loaded.estimator)
    model_input = as_model_input(sample.frame, sample.named_model)
    reference = reference_answers(loaded.estimator, task, model_input)
    checked = Checked(loaded.estimator, sample.frame, sample.named_model, task, reference, config.code_dir)
    return checked, sample


def build(config: UserModelConfig, say: Callable[[str], None] = print) -> dict:
    """Load, check and write everything; returns the manifest (or raises ModelFileError)."""
    if config.code_dir is not None and not config.code_dir.is_dir():
        raise ModelFileError(f"--code-dir {config.code_dir} is not a directory")
    loaded = load_model(config.model, config.code_dir)
    if loaded.version_warning:
        say(loaded.version_warning)
    checked, sample = check(loaded, config)
    reference = Reference(loaded.reference_name, loaded.format, tuple(loaded.skops_trusted))
    fields = {
        "versions": library_versions(),
        "saved_with": loaded.saved_with,
        "model_class": loaded.class_path,
        "source": {"file": config.model.name, "sha256": loaded.sha256, "format": loaded.format},
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sample": {
            "file": config.sample.name,
            "sha256": sample.sha256,
            "rows": len(checked.frame),
            "label": config.label,
            "requests_seed": config.plan.seed,
        },
    }
    with staged(config.out_dir) as staging:
        (staging / reference.name).write_bytes(loaded.data)
        return write_layout(
            staging, checked, reference, plan=config.plan, code_dir=config.code_dir, fields=fields
        )
