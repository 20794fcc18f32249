"""``python -m handler.aws.package --variant V``: the Lambda deployment zip, as the tutorial builds it.

The tutorial ``pip install``s the libraries into a folder, adds the handler and the pickled
model, and zips it. We do the same, but for Lambda's platform whatever the build machine:
``pip install --target --platform manylinux2014_x86_64 --only-binary=:all: --python-version
3.12`` (also ``manylinux_2_28``/``_2_34``: Lambda's Python 3.12 runs on Amazon Linux 2023,
glibc 2.34; ``--arch arm64``: the ``aarch64`` tags), the model's library versions pinned from
the training manifest (a pickle needs the scikit-learn that wrote it). The zip is
deterministic (sorted entries, fixed timestamps), so the same inputs give the same bytes and
the same CodeSha256, which is what makes ``handler.aws.deploy`` idempotent. boto3 is not packaged:
Lambda's Python runtime provides it (used only for ``MODEL_URI=s3://...``).

Sizes are checked against Lambda's limits: 50 MB zipped (direct upload) and 250 MB unzipped;
a package over either is refused (exit 1) with the figures. Bad arguments: exit 2.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from handler.manifest import ManifestError
from handler.manifest import read as read_manifest
from handler.variants import REFERENCE, VARIANTS, Variant, applicability

MB = 1024 * 1024  # Lambda's "MB": 250 MB unzipped is 262,144,000 bytes
MAX_ZIPPED_BYTES = 50 * MB
MAX_UNZIPPED_BYTES = 250 * MB
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux2014 (glibc 2.17) wheels,
# and the newer manylinux_2_28 / _2_34 ones that recent numpy and scikit-learn releases ship.
PLATFORMS = {
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"),
}
RUNTIME_PYTHON = "3.12"
HANDLER_DIR = Path(__file__).resolve().parent.parent
MODEL_DIR = "model"  # in the zip: MODEL_URI=model/<artifact>, relative to the task root
FIXED_TIME = (2020, 1, 1, 0, 0, 0)

LIBRARIES_BY_FORMAT = {
    "joblib": ("scikit-learn", "joblib"),
    "pickle": ("scikit-learn",),
    "skops": ("skops", "scikit-learn"),
    "json": (),
    "onnx": ("onnxruntime",),
}
LIBRARIES_BY_INPUT = {"pandas": ("pandas",), "numpy": ("numpy",), "python": ()}


def runtime_modules() -> list[Path]:
    """What ships: every module directly in ``handler/`` (its subpackages deploy it and stay home)."""
    return sorted(HANDLER_DIR.glob("*.py"))


class PackageError(RuntimeError):
    """The package cannot be built or breaks Lambda's limits; the message is one line."""


@dataclass(frozen=True)
class PackageConfig:
    variant: Variant
    arch: str
    models_dir: Path
    out_dir: Path
    model_from_s3: bool
    python_version: str = RUNTIME_PYTHON
    s3_upload: bool = False  # uploaded through S3 (handler.aws.deploy): the 50 MB direct limit does not apply


@dataclass(frozen=True)
class Package:
    path: Path
    variant: str
    arch: str
    requirements: tuple[str, ...]
    zipped_bytes: int
    unzipped_bytes: int
    sha256: str
    model_included: bool

    def within_limits(self, s3_upload: bool = False) -> list[str]:
        """Empty when within Lambda's limits, else one message per limit broken."""
        problems = []
        if self.zipped_bytes > MAX_ZIPPED_BYTES and not s3_upload:
            problems.append(f"{self.zipped_bytes / MB:.1f} MB zipped > Lambda's 50 MB for a direct upload")
        if self.unzipped_bytes > MAX_UNZIPPED_BYTES:
            problems.append(f"{self.unzipped_bytes / MB:.1f} MB unzipped > Lambda's 250 MB")
        return problems


def requirements(variant: Variant, models_dir: Path) -> tuple[str, ...]:
    """Third-party distributions the variant imports, pinned to the training manifest's versions."""
    model_format = variant.environment(str(models_dir)).get("MODEL_FORMAT", variant.model_format or "joblib")
    names = list(LIBRARIES_BY_FORMAT[model_format]) + list(LIBRARIES_BY_INPUT[variant.input_path])
    if variant.name == "tutorial":  # the tutorial's handler imports pandas, joblib and sklearn itself
        names = ["pandas", "scikit-learn", "joblib"]
    try:
        versions = read_manifest(models_dir / "manifest.json").versions
    except (OSError, ValueError):
        versions = {}
    pinned = []
    for name in dict.fromkeys(names):
        version = versions.get(name) or versions.get(name.replace("-", "_"))
        pinned.append(f"{name}=={version}" if version and name in ("scikit-learn", "skops") else name)
    return tuple(pinned)


def _pip_install(requirements_: tuple[str, ...], target: Path, arch: str, python_version: str) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--target", str(target), "--only-binary=:all:"]
    command += [part for platform in PLATFORMS[arch] for part in ("--platform", platform)]
    command += ["--implementation", "cp", "--python-version", python_version, *requirements_]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()] or ["(no output)"]
        raise PackageError(f"pip could not install {' '.join(requirements_)} for {arch}: {lines[-1]}")


def _files(config: PackageConfig, site: Path | None) -> list[tuple[str, Path]]:
    """(name in the zip, file on disk), sorted: dependencies, the handler, the model."""
    entries: list[tuple[str, Path]] = []
    if site is not None:
        for path in site.rglob("*"):
            relative = path.relative_to(site)
            if path.is_file() and "__pycache__" not in relative.parts and relative.parts[0] != "bin":
                entries.append((relative.as_posix(), path))
    for module in runtime_modules():
        entries.append((f"handler/{module.name}", module))
    if not config.model_from_s3:
        artifact = config.models_dir / config.variant.artifact_in(config.models_dir)
        manifest = config.models_dir / "manifest.json"
        for path in (artifact, manifest):
            if not path.is_file():
                raise PackageError(f"{path} is missing: run python -m training (or pass --models)")
            entries.append((f"{MODEL_DIR}/{path.name}", path))
        entries += _code_dir_entries(config.models_dir)
    return sorted(entries)


def _code_dir_entries(models_dir: Path) -> list[tuple[str, Path]]:
    """The user's own modules the model needs (the manifest's ``code_dir``), beside the model."""
    code_dir = read_manifest(models_dir / "manifest.json").training.get("code_dir")
    if not isinstance(code_dir, str) or not code_dir:
        return []
    root = models_dir / code_dir
    return [
        (f"{MODEL_DIR}/{path.relative_to(models_dir).as_posix()}", path)
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]


def _write_zip(entries: list[tuple[str, Path]], destination: Path) -> tuple[int, Path]:
    unzipped = 0
    temporary = destination.with_name(f".{destination.name}.tmp")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in entries:
            data = path.read_bytes()
            unzipped += len(data)
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return unzipped, temporary


def build(config: PackageConfig) -> Package:
    """Build the zip; it replaces an earlier one only when within Lambda's limits."""
    needed = requirements(config.variant, config.models_dir)
    suffix = "-s3model" if config.model_from_s3 else ""
    destination = config.out_dir / f"logit-{config.variant.name}-{config.arch}{suffix}.zip"
    config.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lambda-package-") as scratch:
        site = None
        if needed:
            site = Path(scratch) / "site"
            _pip_install(needed, site, config.arch, config.python_version)
        unzipped, temporary = _write_zip(_files(config, site), destination)
    package = Package(
        path=destination,
        variant=config.variant.name,
        arch=config.arch,
        requirements=needed,
        zipped_bytes=temporary.stat().st_size,
        unzipped_bytes=unzipped,
        sha256=hashlib.sha256(temporary.read_bytes()).hexdigest(),
        model_included=not config.model_from_s3,
    )
    problems = package.within_limits(config.s3_upload)
    if problems:
        temporary.unlink()
        sizes = f"{package.unzipped_bytes / MB:.1f} MB unzipped, {package.zipped_bytes / MB:.1f} MB zipped"
        raise PackageError(
            f"variant {config.variant.name} ({config.arch}, {sizes}) is too big for Lambda: "
            + "; ".join(problems)
            + (
                ""
                if config.s3_upload
                else " (--s3-upload lifts the 50 MB limit: handler.aws.deploy uploads via S3)"
            )
        )
    temporary.replace(destination)
    return package


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handler.aws.package", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--variant", required=True, help=f"one of {', '.join(VARIANTS)}, or 'all'")
    parser.add_argument("--arch", default="x86_64", choices=tuple(PLATFORMS))
    parser.add_argument("--python-version", default=RUNTIME_PYTHON, help="Lambda runtime (default 3.12)")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("dist"), help="output folder (default dist/)")
    parser.add_argument(
        "--model-from-s3", action="store_true", help="leave the model out (MODEL_URI=s3://...)"
    )
    parser.add_argument(
        "--s3-upload",
        action="store_true",
        help="the zip goes through S3: only the 250 MB unzipped limit applies",
    )
    return parser


def _all_variants(models_dir: Path) -> list[str]:
    """``--variant all``: those that apply to the model (a library missing here is no reason:
    pip installs it for Lambda); without a readable manifest, every variant but the reference."""
    try:
        entries = applicability(models_dir)
    except ManifestError:
        return [name for name in VARIANTS if name != REFERENCE]
    return [e.variant.name for e in entries if e.applies or e.reason.endswith(" is not installed")]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    names = _all_variants(args.models) if args.variant == "all" else [args.variant]
    if any(name not in VARIANTS for name in names):
        parser.error(f"--variant {args.variant!r}: expected one of {', '.join(VARIANTS)} or 'all'")
    if not args.model_from_s3 and not (args.models / "manifest.json").is_file():
        parser.error(f"--models {str(args.models)!r}: no manifest.json; run python -m training")
    status = 0
    print(f"{'variant':<16}{'arch':<8}{'unzipped MB':>12}{'zipped MB':>11}  (limits: 250 and 50 MB)")
    for name in names:
        config = PackageConfig(
            VARIANTS[name],
            args.arch,
            args.models,
            args.out,
            args.model_from_s3,
            args.python_version,
            args.s3_upload,
        )
        try:
            package = build(config)
        except PackageError as exc:
            print(f"{name:<16}{args.arch:<8}refused: {exc}", file=sys.stderr)
            status = 1
            continue
        sizes = f"{package.unzipped_bytes / MB:>12.2f}{package.zipped_bytes / MB:>11.2f}"
        print(f"{name:<16}{args.arch:<8}{sizes}  {package.path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
