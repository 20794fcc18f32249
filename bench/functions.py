"""Which functions a tool measures when it starts the emulator with ``--config FILE``.

Every tool that starts an emulator passes ``--config FILE`` on to ``python -m handler.serve``
and checks here first, so that a function the file does not have is one line naming the
function and the file (exit 2), before anything starts. Reads the file with the emulator's own
reader (``handler.local.config.load_config``); starts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class FunctionsError(ValueError):
    """The configuration cannot be read or lacks a function asked for (one line)."""


def load(config: Path | None):
    """The emulator configuration at ``config`` (None: the default one), or FunctionsError."""
    from handler.local.config import DEFAULT_CONFIG, ConfigError, load_config

    try:
        return load_config(config if config is not None else DEFAULT_CONFIG)
    except ConfigError as exc:
        raise FunctionsError(f"--config {exc}") from None


def chosen(config: Path | None, wanted: Sequence[str] | None, default: Sequence[str] = ()) -> tuple[str, ...]:
    """The functions to measure: ``wanted`` (each must be in the file), else ``default`` when no
    ``--config`` is given, else every function of the file."""
    emulator = load(config)
    names = [function.name for function in emulator.functions]
    if wanted:
        selected = tuple(wanted)
    elif config is None and default:
        selected = tuple(default)
    else:
        selected = tuple(names)
    if not selected:
        raise FunctionsError(f"--config {config}: no [[functions]] in it")
    where = str(config) if config is not None else "the default emulator configuration"
    for name in selected:
        if name not in names:
            raise FunctionsError(
                f"unknown function {name!r}: not in {where} (it has: {', '.join(names) or 'none'})"
            )
    return selected


def needs_models(config: Path | None, functions: Sequence[str]) -> bool:
    """Whether any of ``functions`` loads a model from the models directory (``MODEL_URI``)."""
    emulator = load(config)
    return any(
        "MODEL_URI" in function.env and not function.env["MODEL_URI"].startswith("s3://")
        for function in emulator.functions
        if function.name in functions
    )


def model_artifact(config: Path | None, function: str) -> str | None:
    """The artifact file name a function's ``MODEL_URI`` names (for its verify tolerance), or None."""
    found = load(config).function(function)
    if found is None or "MODEL_URI" not in found.env:
        return None
    return Path(found.env["MODEL_URI"]).name
