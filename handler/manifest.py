"""``manifest.json``: what ``python -m training`` wrote beside the models, typed and versioned.

Written by ``training.export`` and read by the handler (the sha256 an artifact must have), the
packager (the library versions a pickle needs) and the cold-start profiler (artifact sizes).
Every reader goes through :func:`parse`, which refuses a manifest of an unknown
``schema_version`` or without the fields it needs, with a one-line :class:`ManifestError`.
Plain classes and the standard library only: this module ships to Lambda, and the lean handler
must not pay for importing ``dataclasses``.

Format history: 1, the first (``features``, ``artifacts`` {name: {format, sha256, bytes}},
``versions``, and training's own fields: data source and sha256, rows, metrics).
"""

from __future__ import annotations

import json

SCHEMA_VERSION = 1
FILE_NAME = "manifest.json"


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file and the problem."""


class ArtifactEntry:
    __slots__ = ("bytes", "format", "sha256")

    def __init__(self, format: str, sha256: str, bytes: int) -> None:
        self.format, self.sha256, self.bytes = format, sha256, bytes

    def to_dict(self) -> dict:
        return {"format": self.format, "sha256": self.sha256, "bytes": self.bytes}


class Manifest:
    """The models directory's record: artifacts by file name, feature order, library versions;
    ``training`` holds the rest of what training recorded (data, rows, metrics), as written."""

    __slots__ = ("artifacts", "features", "training", "versions")

    def __init__(
        self,
        features: list[str],
        artifacts: dict[str, ArtifactEntry],
        versions: dict[str, str],
        training: dict,
    ) -> None:
        self.features, self.artifacts, self.versions, self.training = features, artifacts, versions, training

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "features": list(self.features),
            "artifacts": {name: entry.to_dict() for name, entry in self.artifacts.items()},
            "versions": dict(self.versions),
            **self.training,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def parse(text: str, where: str = FILE_NAME) -> Manifest:
    """A manifest from its JSON text; :class:`ManifestError` for anything this version cannot read."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: not a manifest (top level is not an object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(f"{where}: schema_version {version!r} is not supported (this version reads 1)")
    try:
        artifacts = {
            name: ArtifactEntry(str(entry["format"]), str(entry["sha256"]), int(entry["bytes"]))
            for name, entry in data["artifacts"].items()
        }
        features = [str(name) for name in data["features"]]
        versions = {str(key): str(value) for key, value in data.get("versions", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ManifestError(f"{where}: malformed: {type(exc).__name__} {exc}") from exc
    known = {"schema_version", "features", "artifacts", "versions"}
    return Manifest(features, artifacts, versions, {k: v for k, v in data.items() if k not in known})


def read(path) -> Manifest:
    """The manifest file at ``path`` (a ``pathlib.Path`` or a string)."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse(text, str(path))
