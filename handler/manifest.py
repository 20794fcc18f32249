"""``manifest.json``: what ``python -m training`` wrote beside the models, typed and versioned.

Written by ``training.export`` and read by the handler (the sha256 an artifact must have, the
model's input schema and task), the packager (the library versions a pickle needs), the variants
(which artifacts exist, which could not be made and why) and the cold-start profiler (sizes).
Every reader goes through :func:`parse`, which refuses a manifest of an unknown
``schema_version`` or without the fields it needs, with a one-line :class:`ManifestError`.
Plain classes and the standard library only: this module ships to Lambda, and the lean handler
must not pay for importing ``dataclasses``.

Format history:
1, the first (``features``, ``artifacts`` {name: {format, sha256, bytes}}, ``versions``, and
training's own fields: data source and sha256, rows, metrics). Read as: every input a number,
not nullable; the task binary with classes [0, 1], positive class 1.
2, a superset of 1 (every field of 1 keeps its meaning): ``inputs`` (one per feature, in order:
name, type number|string, nullable, and for strings max_chars and categories), ``task`` (kind
binary|multiclass|regression, classes, positive_class), each artifact's ``role``
(reference|derived) and ``tolerance``, ``unavailable`` {format: reason}, ``memory``.
The spec: docs/model.md ("The manifest").
"""

from __future__ import annotations

import json

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
FILE_NAME = "manifest.json"
TASK_KINDS = ("binary", "multiclass", "regression")
INPUT_TYPES = ("number", "string")
ROLES = ("reference", "derived")
DEFAULT_MAX_CHARS = 64  # a string input without max_chars
DEFAULT_TOLERANCE = 1e-12  # an artifact without a stated tolerance (v1: the tutorial's float64 paths)


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file and the problem."""


class InputSpec:
    """One input of the model: its name, ``number`` or ``string``, whether it may be missing, and
    for a string its maximum length and the categories the model accepts (None: any string)."""

    __slots__ = ("categories", "max_chars", "name", "nullable", "type")

    def __init__(
        self,
        name: str,
        type: str = "number",
        nullable: bool = False,
        max_chars: int | None = None,
        categories: tuple[str, ...] | None = None,
    ) -> None:
        self.name, self.type, self.nullable = name, type, nullable
        self.max_chars = max_chars if max_chars is not None or type != "string" else DEFAULT_MAX_CHARS
        self.categories = categories

    def to_dict(self) -> dict:
        data: dict = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.type == "string":
            data["max_chars"] = self.max_chars
            data["categories"] = None if self.categories is None else list(self.categories)
        return data


class Task:
    """What the model predicts: ``binary`` (P(positive_class)), ``multiclass`` (each class's
    probability, by label) or ``regression`` (the value); ``classes`` as JSON values."""

    __slots__ = ("classes", "kind", "positive_class")

    def __init__(self, kind: str = "binary", classes: list | None = None, positive_class=None) -> None:
        self.kind, self.classes, self.positive_class = kind, classes, positive_class

    def to_dict(self) -> dict:
        return {"kind": self.kind, "classes": self.classes, "positive_class": self.positive_class}


BINARY_0_1 = Task("binary", [0, 1], 1)  # what a version 1 manifest means


class ArtifactEntry:
    """One artifact: format, sha256, size; in version 2 its role and tolerance, and what else
    training recorded (``extra``, kept as written: e.g. ``trusted``, the types a skops file needs)."""

    __slots__ = ("bytes", "extra", "format", "role", "sha256", "tolerance")

    def __init__(
        self,
        format: str,
        sha256: str,
        bytes: int,
        role: str | None = None,
        tolerance: float | None = None,
        extra: dict | None = None,
    ) -> None:
        self.format, self.sha256, self.bytes = format, sha256, bytes
        self.role, self.tolerance = role, tolerance
        self.extra = extra or {}

    @property
    def trusted(self) -> list[str]:
        """The types a skops file needs trusted, as training recorded them (none: [])."""
        value = self.extra.get("trusted")
        return [str(name) for name in value] if isinstance(value, list) else []

    def to_dict(self) -> dict:
        data: dict = {"format": self.format, "sha256": self.sha256, "bytes": self.bytes}
        if self.role is not None:
            data["role"] = self.role
        if self.tolerance is not None:
            data["tolerance"] = self.tolerance
        data.update(self.extra)
        return data


class Manifest:
    """The models directory's record: artifacts by file name, the input schema and task, library
    versions; ``training`` holds the rest of what training recorded (data, rows, metrics, source,
    requests, model_class, ...), as written. Built without ``inputs`` it is (and writes) version 1."""

    __slots__ = (
        "artifacts",
        "features",
        "inputs",
        "memory",
        "schema_version",
        "task",
        "training",
        "unavailable",
        "versions",
    )

    def __init__(
        self,
        features: list[str],
        artifacts: dict[str, ArtifactEntry],
        versions: dict[str, str],
        training: dict,
        inputs: list[InputSpec] | None = None,
        task: Task | None = None,
        unavailable: dict[str, str] | None = None,
        memory: dict | None = None,
    ) -> None:
        self.features, self.artifacts, self.versions, self.training = features, artifacts, versions, training
        self.schema_version = 1 if inputs is None else 2
        self.inputs = inputs if inputs is not None else [InputSpec(name) for name in features]
        self.task = task or BINARY_0_1
        self.unavailable = unavailable or {}
        self.memory = memory or {}

    @property
    def numbers_only(self) -> bool:
        return all(spec.type == "number" for spec in self.inputs)

    @property
    def memory_size_mb(self) -> int | None:
        value = self.memory.get("memory_size_mb")
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def file_for(self, fmt: str, role: str | None = None) -> str | None:
        """The artifact file of format ``fmt`` (``role`` "reference": the user's own file; else a
        file this project wrote, preferred over the reference), or None."""
        found = None
        for name, entry in self.artifacts.items():
            if role == "reference":
                if entry.role == "reference":
                    return name
            elif entry.format == fmt:
                if entry.role != "reference":
                    return name
                found = found or name
        return found

    def tolerance(self, name: str) -> float:
        """The largest |prediction - expected| allowed for answers computed from artifact ``name``."""
        entry = self.artifacts.get(name)
        return entry.tolerance if entry is not None and entry.tolerance is not None else DEFAULT_TOLERANCE

    def to_dict(self) -> dict:
        data: dict = {
            "schema_version": self.schema_version,
            "features": list(self.features),
        }
        if self.schema_version >= 2:
            data["inputs"] = [spec.to_dict() for spec in self.inputs]
            data["task"] = self.task.to_dict()
        data["artifacts"] = {name: entry.to_dict() for name, entry in self.artifacts.items()}
        if self.schema_version >= 2:
            data["unavailable"] = dict(self.unavailable)
        data["versions"] = dict(self.versions)
        if self.schema_version >= 2 and self.memory:
            data["memory"] = dict(self.memory)
        data.update(self.training)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _input(item: object, index: int) -> InputSpec:
    if not isinstance(item, dict):
        raise ValueError(f"inputs[{index}] is not an object")
    kind = item.get("type", "number")
    if kind not in INPUT_TYPES:
        raise ValueError(f"inputs[{index}].type {kind!r} is not one of {', '.join(INPUT_TYPES)}")
    nullable = item.get("nullable", False)
    if not isinstance(nullable, bool):
        raise ValueError(f"inputs[{index}].nullable is not a boolean")
    max_chars = item.get("max_chars")
    if max_chars is not None and (
        not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars < 1
    ):
        raise ValueError(f"inputs[{index}].max_chars is not a positive integer")
    categories = item.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise ValueError(f"inputs[{index}].categories is not a list of strings")
        categories = tuple(categories)
    return InputSpec(str(item["name"]), kind, nullable, max_chars, categories)


def _task(item: object) -> Task:
    if not isinstance(item, dict):
        raise ValueError("task is not an object")
    kind, classes, positive = item.get("kind"), item.get("classes"), item.get("positive_class")
    if kind not in TASK_KINDS:
        raise ValueError(f"task.kind {kind!r} is not one of {', '.join(TASK_KINDS)}")
    if kind == "regression":
        return Task(kind, None, None)
    if not isinstance(classes, list) or len(classes) < 2:
        raise ValueError(f"task.classes of a {kind} task must list at least 2 classes")
    if kind == "binary":
        if len(classes) != 2:
            raise ValueError(f"task.classes of a binary task must list 2 classes, not {len(classes)}")
        if positive not in classes:
            raise ValueError(f"task.positive_class {positive!r} is not one of task.classes")
    return Task(kind, classes, positive if kind == "binary" else None)


def _artifact(entry: dict) -> ArtifactEntry:
    role = entry.get("role")
    if role is not None and role not in ROLES:
        raise ValueError(f"artifact role {role!r} is not one of {', '.join(ROLES)}")
    tolerance = entry.get("tolerance")
    if tolerance is not None:
        tolerance = float(tolerance)
    extra = {key: value for key, value in entry.items() if key not in _ENTRY_FIELDS}
    return ArtifactEntry(
        str(entry["format"]), str(entry["sha256"]), int(entry["bytes"]), role, tolerance, extra
    )


_ENTRY_FIELDS = frozenset(("format", "sha256", "bytes", "role", "tolerance"))


V2_FIELDS = ("inputs", "task", "unavailable", "memory")


def parse(text: str, where: str = FILE_NAME) -> Manifest:
    """A manifest from its JSON text; :class:`ManifestError` for anything this version cannot read."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: not a manifest (top level is not an object)")
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ManifestError(
            f"{where}: schema_version {version!r} is not supported (this version reads 1 and 2)"
        )
    try:
        artifacts = {name: _artifact(entry) for name, entry in data["artifacts"].items()}
        features = [str(name) for name in data["features"]]
        versions = {str(key): str(value) for key, value in data.get("versions", {}).items()}
        inputs = task = unavailable = memory = None
        if version == 2:
            inputs = [_input(item, index) for index, item in enumerate(data["inputs"])]
            if [spec.name for spec in inputs] != features:
                raise ValueError("inputs do not name the features, in their order")
            task = _task(data["task"])
            unavailable = {str(key): str(value) for key, value in (data.get("unavailable") or {}).items()}
            memory = data.get("memory") or {}
            if not isinstance(memory, dict):
                raise ValueError("memory is not an object")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ManifestError(f"{where}: malformed: {type(exc).__name__} {exc}") from exc
    known = {"schema_version", "features", "artifacts", "versions", *V2_FIELDS}
    if version == 2 and data.get("memory") is None and "memory" in data:
        known.discard("memory")  # written back as it was: null
    rest = {k: v for k, v in data.items() if k not in known}
    return Manifest(features, artifacts, versions, rest, inputs, task, unavailable, memory)


def read(path) -> Manifest:
    """The manifest file at ``path`` (a ``pathlib.Path`` or a string)."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse(text, str(path))
