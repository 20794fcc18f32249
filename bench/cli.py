"""Argument types shared by the ``bench`` command lines (defined once, in ``handler.cliargs``)."""

from __future__ import annotations

from handler.cliargs import positive_float, positive_int

__all__ = ["positive_float", "positive_int"]
