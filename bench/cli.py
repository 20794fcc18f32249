"""Argument types shared by every command line (bench, handler.local, handler.aws): argparse
quotes the bad value and exits 2."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_float(text: str) -> float:
    """A number greater than 0."""
    if not (value := _number(text)) > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    if not 0.0 <= (value := _number(text)) <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], not {text}")
    return value


def percentile(text: str) -> float:
    """A percentile in (0, 100)."""
    if not 0.0 < (value := _number(text)) < 100.0:
        raise argparse.ArgumentTypeError(f"a percentile must be in (0, 100), not {text}")
    return value
