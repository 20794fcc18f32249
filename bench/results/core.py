"""The base of every results document: typed, versioned, read strictly, written atomically.

(The strict typed reading itself is :mod:`bench.records`.)

A results file is ``{"kind": ..., "schema_version": N, "metadata": {...}, ...}``. Each kind
is one frozen dataclass, a subclass of :class:`Document` that names its ``KIND`` and
``SCHEMA_VERSION``; subclassing registers it. ``to_dict`` gives the JSON document and
``from_dict`` reads one back, converting nested dataclasses from the field types and
refusing (with a one-line :class:`ResultsError` naming the field) a missing field, a field
it does not know, a value of the wrong type, an unknown kind or a schema version it does not
read: a renamed field fails loudly instead of reading as absent. An older version a kind still
reads is listed in its ``READS_OLDER``; a field renamed since is mapped by its ``upgrade`` (only
where the old field meant exactly what the new one does: the figure moves, it is not recomputed).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from bench.records import Record, ResultsError, build, plain

T = TypeVar("T")

KINDS: dict[str, type[Document]] = {}


class Document(Record):
    """A results document; subclasses are frozen dataclasses with ``KIND`` and ``SCHEMA_VERSION``."""

    KIND: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int]
    # older versions read as this one: each a subset of its fields, the new ones defaulted
    READS_OLDER: ClassVar[tuple[int, ...]] = ()

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        """An older version's document (one of ``READS_OLDER``) with this version's field names;
        ``data`` is a copy the kind may change. Default: unchanged (the old fields a subset)."""
        return data

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "KIND" in cls.__dict__:
            KINDS[cls.KIND] = cls

    def to_dict(self) -> dict:
        return {"kind": self.KIND, "schema_version": self.SCHEMA_VERSION, **plain(self)}

    @classmethod
    def from_dict(cls: type[T], data: dict, where: str | None = None) -> T:
        return document_from_dict(data, where or "document", expected=cls)  # type: ignore[arg-type]


def document_from_dict(data: object, where: str, expected: type[Document] | None = None) -> Document:
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: not a results document (top level is not an object)")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ResultsError(f"{where}: unknown results kind {kind!r}; expected one of {tuple(KINDS)}")
    cls = KINDS[kind]
    if expected is not None and cls is not expected:
        raise ResultsError(f"{where}: a {kind} document, not {expected.KIND}")
    version = data.get("schema_version")
    if version != cls.SCHEMA_VERSION and version not in cls.READS_OLDER:
        raise ResultsError(
            f"{where}: {kind} schema_version {version!r} is not supported "
            f"(this version reads {cls.SCHEMA_VERSION})"
        )
    if version != cls.SCHEMA_VERSION:
        data = cls.upgrade(copy.deepcopy(data), version)
    return build(cls, data, where)


def renamed(record: Any, old: str, new: str) -> Any:
    """``record`` (a JSON object) with its key ``old`` called ``new``, in the same place; as is
    when it has no ``old`` or is not an object (reading it then names what is wrong)."""
    if not isinstance(record, dict):
        return record
    return {new if key == old else key: value for key, value in record.items()}


def read_document(path: Path) -> Document:
    """Read a results file as its typed document (any kind)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ResultsError(f"{path}: not JSON: {exc}") from exc
    return document_from_dict(data, str(path))


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file, fsync and a rename: never half a file,
    and a failure leaves the old one. The one atomic writer (results, the report, its charts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: Path, document: dict | Record) -> Path:
    """A results document (or any JSON) as ``path``, atomically (:func:`write_atomic`)."""
    if isinstance(document, Record):
        document = document.to_dict()
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    return write_atomic(path, text.encode("utf-8"))
