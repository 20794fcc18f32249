"""Installed package versions, for the records that say what produced a result.

Standard library only and shared from here, the one layer every part of the project may
import: the training manifest (``training.export``) and the results metadata (collected by
``bench.machine``) both record versions with it.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterable


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Python's version and each installed package's; packages not installed are left out."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
