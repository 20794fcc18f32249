"""Load a user's fitted scikit-learn estimator from the file they saved (joblib, pickle or skops).

A pickle or joblib file is code: unpickling it runs whatever it names. The command says so
before it loads anything and records the file's sha256, so what was measured is the file that
was checked. The format is found by trying, not taken from the extension: a zip archive is tried
as skops; anything else is unpickled by joblib (which also reads plain pickles), and called
``joblib`` when joblib's own array records or compression are in it, ``pickle`` otherwise.

The scikit-learn version the user saved with is captured from the unpickling itself: sklearn
pops ``_sklearn_version`` from the state and warns (``InconsistentVersionWarning``, carrying
``original_sklearn_version``) when it differs from the installed one. The warning is recorded,
never raised, so a test run with warnings as errors still loads an older model.
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PREAMBLE = (
    "note: a pickle or joblib model file is code: loading it runs whatever it holds; "
    "load only files you trust."
)
# The user's file keeps these names in models/ (the format decides, not the user's extension).
REFERENCE_NAMES = {"joblib": "reference.joblib", "pickle": "reference.pickle", "skops": "reference.skops"}
# zlib, gzip, bz2, xz and lzma magic numbers: joblib.dump(compress=...) writes one of these.
_COMPRESSED = (b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x5d\x00\x00")
# skops trusts these modules' types for a user's own file and for our re-serialization.
TRUSTED_PREFIXES = ("sklearn.", "numpy.")


class ModelFileError(ValueError):
    """The model file cannot be used; the message names the problem in one line."""


@dataclass
class LoadedModel:
    estimator: object
    path: Path
    data: bytes
    sha256: str
    format: str
    saved_with: dict[str, str]
    version_warning: str | None
    skops_trusted: list[str] = field(default_factory=list)

    @property
    def reference_name(self) -> str:
        return REFERENCE_NAMES[self.format]

    @property
    def class_path(self) -> str:
        return public_class_path(type(self.estimator))


def public_class_path(kind: type) -> str:
    """``module.Class`` by the shortest module that exports it (``sklearn.ensemble.RandomForest
    Classifier``, not ``sklearn.ensemble._forest.RandomForestClassifier``)."""
    parts = kind.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is not None and getattr(module, kind.__qualname__, None) is kind:
            return f"{module.__name__}.{kind.__qualname__}"
    return f"{kind.__module__}.{kind.__qualname__}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def code_on_path(code_dir: Path | None) -> Iterator[None]:
    """``code_dir`` first on ``sys.path`` while the block runs (the user's own modules)."""
    if code_dir is None:
        yield
        return
    entry = str(code_dir.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _missing_code(exc: BaseException, code_dir: Path | None) -> ModelFileError | None:
    """A one-line refusal naming the user's module when unpickling needs code we do not have."""
    hint = "pass --code-dir DIR with it" if code_dir is None else f"it is not in --code-dir {code_dir}"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return ModelFileError(f"the model needs the module '{exc.name}' (not installed here): {hint}")
    if isinstance(exc, AttributeError):
        match = re.search(r"Can't get attribute '([^']+)' on <module '([^']+)'", str(exc))
        if match:
            name, module = match.groups()
            if module == "__main__" or module.endswith(".__main__"):  # the running program's (-m)
                return ModelFileError(
                    f"the model needs '{name}' from module '__main__' (the script that saved it): "
                    "move it to a module of its own and pass --code-dir DIR with it"
                )
            return ModelFileError(f"the model needs '{name}' from the module '{module}': {hint}")
    return None


def _is_sklearn_estimator(obj: object) -> bool:
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator) and callable(getattr(obj, "predict", None))


def _unpickle(data: bytes) -> object:
    import joblib

    return joblib.load(io.BytesIO(data))


def _pickle_format(data: bytes) -> str:
    if data.startswith(_COMPRESSED) or b"NumpyArrayWrapper" in data[:1_000_000]:
        return "joblib"
    return "pickle"


def trusted_types(untrusted: list[str]) -> list[str] | None:
    """``untrusted`` when every type is scikit-learn's or numpy's (we trust those), else None."""
    if all(name.startswith(TRUSTED_PREFIXES) for name in untrusted):
        return sorted(untrusted)
    return None


def _load_skops(data: bytes) -> tuple[object, list[str]]:
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=data)
    trusted = trusted_types(untrusted)
    if trusted is None:
        others = [name for name in untrusted if not name.startswith(TRUSTED_PREFIXES)]
        raise ModelFileError(
            f"the skops file holds types outside scikit-learn and numpy ({', '.join(others)}): "
            "refusing to trust them"
        )
    return skops.io.loads(data, trusted=trusted), trusted


def load_model(path: Path, code_dir: Path | None = None) -> LoadedModel:
    """The fitted estimator in ``path``, or :class:`ModelFileError` naming why not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise ModelFileError(f"{path} is empty")
    from sklearn.exceptions import InconsistentVersionWarning

    trusted: list[str] = []
    with code_on_path(code_dir), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if data.startswith(b"PK\x03\x04"):
                fmt = "skops"
                estimator, trusted = _load_skops(data)
            else:
                fmt = _pickle_format(data)
                estimator = _unpickle(data)
        except ModelFileError:
            raise
        except Exception as exc:  # unpickling raises anything the file's code raises
            refusal = _missing_code(exc, code_dir)
            if refusal is not None:
                raise refusal from exc
            kind = "skops" if fmt == "skops" else "joblib or pickle"
            raise ModelFileError(
                f"{path} does not load as a {kind} file: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
    if not _is_sklearn_estimator(estimator):
        kind = type(estimator)
        raise ModelFileError(
            f"{path} holds a {kind.__module__}.{kind.__qualname__}, not a scikit-learn estimator"
        )
    import sklearn

    saved = {str(w.message.original_sklearn_version) for w in caught if _is(w, InconsistentVersionWarning)}
    version_warning = None
    if saved:
        saved_version = sorted(saved)[0]
        version_warning = (
            f"warning: the model was saved with scikit-learn {saved_version}, this is "
            f"{sklearn.__version__}; its predictions are recorded with {sklearn.__version__}"
        )
    else:
        saved_version = sklearn.__version__
    return LoadedModel(
        estimator=estimator,
        path=path,
        data=data,
        sha256=sha256_bytes(data),
        format=fmt,
        saved_with={"scikit-learn": saved_version},
        version_warning=version_warning,
        skops_trusted=trusted,
    )


def _is(record: warnings.WarningMessage, category: type[Warning]) -> bool:
    return isinstance(record.message, category)
