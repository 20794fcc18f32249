"""Fetch a model artifact and prove it is the one we trained, before anything deserializes it.

The bytes are read once, hashed, compared with the expected sha256 (``MODEL_SHA256``, else
the entry for the file in the ``manifest.json`` beside it), and only those same bytes are
handed to the deserializer, so nothing can swap the file between check and load. A pickle or
joblib file is code: loading one we cannot vouch for is refused, never attempted.

``ModelLoadError`` subclasses ImportError on purpose: raised while the handler module is
imported, AWS's runtime client reports it as ``Runtime.ImportModuleError`` (an init error),
as Lambda does for a function that cannot start.

The manifest beside the artifact (when there is one) is parsed once here and kept with it: the
handler reads the model's input schema and task from it. When ``MODEL_SHA256`` is set, a manifest
is optional, but one that describes another model (its sha256 for this file differs) is refused.

Only the standard library is imported here (boto3 only for ``s3://`` URIs, and only then).
"""

from __future__ import annotations

import hashlib
import os

from handler.manifest import Manifest, ManifestError, parse

MANIFEST = "manifest.json"
DOWNLOAD_DIR = os.environ.get("MODEL_DOWNLOAD_DIR", "/tmp")
ARTIFACT_BY_FORMAT = {
    "joblib": "logit.pkl",
    "pickle": "logit.pickle",
    "skops": "logit.skops",
    "json": "logit.json",
    "onnx": "logit.onnx",
}


class ModelLoadError(ImportError):
    """The model cannot be loaded: missing, unverifiable, tampered with or malformed."""


class Artifact:
    """Verified model bytes, and the manifest beside them (None when there is none).
    (A plain class: dataclasses costs ~6 ms of import on the lean path.)"""

    __slots__ = ("data", "manifest", "name", "sha256", "uri")

    def __init__(self, uri: str, data: bytes, sha256: str, manifest: Manifest | None = None) -> None:
        self.uri = uri
        self.name = uri.rstrip("/").rsplit("/", 1)[-1]
        self.data = data
        self.sha256 = sha256
        self.manifest = manifest


def _read_local(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model {path}: {exc.strerror or exc}") from exc


def _manifest(manifest_text: str | None, where: str) -> Manifest | None:
    if manifest_text is None:
        return None
    try:
        return parse(manifest_text, where)
    except ManifestError as exc:
        raise ModelLoadError(str(exc)) from exc


def _fetch_s3(uri: str) -> tuple[bytes, str | None]:
    """Download an s3:// object (and the manifest beside it, if any) to DOWNLOAD_DIR."""
    import boto3
    import botocore.exceptions

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)
    try:
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.BotoCoreError as exc:
        raise ModelLoadError(f"cannot download {uri}: {exc}") from exc
    except botocore.exceptions.ClientError as exc:
        raise ModelLoadError(f"cannot download {uri}: {exc}") from exc
    manifest_key = key.rsplit("/", 1)[0] + "/" + MANIFEST if "/" in key else MANIFEST
    try:
        manifest = client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read().decode()
    except botocore.exceptions.ClientError:
        manifest = None
    local = os.path.join(DOWNLOAD_DIR, f"model-{hashlib.sha256(uri.encode()).hexdigest()[:16]}")
    with open(local + ".part", "wb") as file:
        file.write(data)
    os.replace(local + ".part", local)
    return data, manifest


def fetch_verified(uri: str, expected_sha256: str | None = None) -> Artifact:
    """Read ``uri`` (a path or ``s3://bucket/key``) and check its sha256, or raise."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if uri.startswith("s3://"):
        data, manifest_text = _fetch_s3(uri)
        where = f"{MANIFEST} beside {uri}"
    else:
        data = _read_local(uri)
        where = os.path.join(os.path.dirname(uri), MANIFEST)
        try:
            with open(where, encoding="utf-8") as file:
                manifest_text: str | None = file.read()
        except FileNotFoundError:
            manifest_text = None
    manifest = _manifest(manifest_text, where)
    entry = manifest.artifacts.get(name) if manifest is not None else None
    if expected_sha256:
        expected = expected_sha256
    elif manifest is None:
        raise ModelLoadError(
            f"no sha256 to verify {name} against: set MODEL_SHA256 or put {MANIFEST} beside it"
        )
    elif entry is None:
        raise ModelLoadError(f"{where} has no sha256 for {name}")
    else:
        expected = entry.sha256
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise ModelLoadError(
            f"sha256 mismatch for {uri}: expected {expected[:16]}…, got {actual[:16]}…; refusing to load it"
        )
    if entry is not None and entry.sha256.lower() != actual:
        # MODEL_SHA256 vouches for the model, but the manifest beside it describes another one:
        # its input schema cannot be trusted for this model.
        raise ModelLoadError(f"{where} describes another {name} (sha256 {entry.sha256[:16]}…); refusing it")
    return Artifact(uri, data, actual, manifest)


def user_code_on_path(artifact: Artifact) -> None:
    """The manifest's ``code_dir`` (the user's own modules, copied beside the model by
    ``python -m training --code-dir``) first on ``sys.path``, so the pickle finds them."""
    code_dir = artifact.manifest.training.get("code_dir") if artifact.manifest is not None else None
    if not isinstance(code_dir, str) or not code_dir:
        return
    import os
    import sys

    if artifact.uri.startswith("s3://"):
        raise ModelLoadError(f"{artifact.uri}: the model needs its code_dir {code_dir!r}; ship it locally")
    path = os.path.join(os.path.dirname(os.path.abspath(artifact.uri)), code_dir)
    if not os.path.isdir(path):
        raise ModelLoadError(f"{artifact.uri}: the model's code_dir {path} is missing")
    if path not in sys.path:
        sys.path.insert(0, path)
