"""``python -m handler.aws.deploy``: the tutorial's console steps, automated with boto3, idempotently.

Package (``handler.aws.package``) → S3 (the zip, and the model when ``--model-from-s3``) → an
execution role (unless ``--role``) → the Lambda function (Python 3.12), waited on until
Active/updated → the REST API (``ANY /{function}``, ``AWS_PROXY``), the invoke permission, the
stage with throttling always on → optionally an API key and usage plan. A second run with the
same inputs changes nothing and says so; ``--teardown`` removes exactly what carries this
tool's tags. ``--endpoint-url`` (or ``AWS_ENDPOINT_URL``) points every client at an
AWS-compatible server such as ``moto_server``. Exit codes: 0 done, 1 AWS refused (one line
naming the call), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from bench.cli import positive_float, positive_int
from handler.aws.apigateway import (
    ApiSpec,
    create_throttled_stage,
    ensure_api,
    ensure_api_key,
    ensure_integration,
    ensure_stage,
    find_api,
    remove_api,
    stage_exists,
)
from handler.aws.clients import session
from handler.aws.package import MODEL_DIR, PLATFORMS, PackageConfig, PackageError, build
from handler.aws.resources import (
    Changes,
    DeployError,
    FunctionSpec,
    check_function_is_ours,
    ensure_bucket,
    ensure_function,
    ensure_object,
    ensure_permission,
    ensure_role,
    remove_function,
    remove_objects,
    remove_role,
    tags_for,
)
from handler.tutorial import TUTORIAL_QUERY
from handler.variants import SEED_HANDLER, VARIANTS, Variant


@dataclass(frozen=True)
class DeployConfig:
    function: str
    variant: Variant
    bucket: str
    region: str | None
    endpoint_url: str | None
    memory_mb: int
    timeout_s: int
    role_arn: str | None
    throttle_rate: float
    throttle_burst: int
    api_key: bool
    stage: str
    arch: str
    model_from_s3: bool
    models_dir: Path
    package: Path | None
    teardown: bool


@dataclass(frozen=True)
class Deployment:
    changes: Changes
    invoke_url: str | None
    api_key_value: str | None


def _manifest(models_dir: Path) -> dict:
    return json.loads((models_dir / "manifest.json").read_text(encoding="utf-8"))


def environment(config: DeployConfig) -> dict[str, str]:
    """The function's variables: the variant's model and input path, and the model's sha256."""
    artifact = config.variant.artifact_in(config.models_dir)
    uri = (
        f"s3://{config.bucket}/{config.function}/model/{artifact}"
        if config.model_from_s3
        else f"{MODEL_DIR}/{artifact}"
    )
    variables = config.variant.environment(str(config.models_dir))  # its format, from the manifest
    variables["MODEL_URI"] = uri
    if config.variant.handler != SEED_HANDLER:
        variables["MODEL_SHA256"] = _manifest(config.models_dir)["artifacts"][artifact]["sha256"]
    return variables


def invoke_url(api_id: str, region: str, stage: str, function: str) -> str:
    return (
        f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/{function}?"
        + urllib.parse.urlencode(TUTORIAL_QUERY)
    )


def deploy(config: DeployConfig) -> Deployment:
    aws = session(config.endpoint_url, config.region)
    region = aws.region_name
    clients = {
        name: aws.client(name, endpoint_url=config.endpoint_url)
        for name in ("s3", "iam", "lambda", "apigateway", "sts")
    }
    changes = Changes()
    if config.teardown:
        remove_api(clients["apigateway"], config.function, changes)
        remove_function(clients["lambda"], config.function, changes)
        remove_role(clients["iam"], config.function, changes)
        remove_objects(clients["s3"], config.bucket, f"{config.function}/", config.function, changes)
        return Deployment(changes, None, None)
    check_function_is_ours(clients["lambda"], config.function)  # before anything is created
    find_api(clients["apigateway"], config.function)  # raises when a same-named API is not ours
    if config.package is not None:
        zip_bytes = config.package.read_bytes()
    else:
        package = build(
            PackageConfig(
                config.variant,
                config.arch,
                config.models_dir,
                Path("dist"),
                config.model_from_s3,
                s3_upload=True,
            )
        )
        zip_bytes = package.path.read_bytes()
    digest = hashlib.sha256(zip_bytes)
    s3 = clients["s3"]
    ensure_bucket(s3, config.bucket, region, config.function, changes)
    code_key = f"{config.function}/code/{digest.hexdigest()}.zip"
    ensure_object(s3, config.bucket, code_key, zip_bytes, config.function, changes)
    model_arn = None
    if config.model_from_s3:
        artifact = config.variant.artifact_in(config.models_dir)
        for name in (artifact, "manifest.json"):
            data = (config.models_dir / name).read_bytes()
            ensure_object(
                s3, config.bucket, f"{config.function}/model/{name}", data, config.function, changes
            )
        model_arn = f"arn:aws:s3:::{config.bucket}/{config.function}/model/*"
    role_arn = config.role_arn or ensure_role(clients["iam"], config.function, model_arn, changes)
    spec = FunctionSpec(
        name=config.function,
        handler=config.variant.handler,
        role_arn=role_arn,
        memory_mb=config.memory_mb,
        timeout_s=config.timeout_s,
        arch=config.arch,
        environment=environment(config),
        bucket=config.bucket,
        code_key=code_key,
        code_sha256=digest.digest(),
    )
    function_arn = ensure_function(clients["lambda"], spec, tags_for(config.function), changes)
    api = ApiSpec(
        function=config.function,
        function_arn=function_arn,
        region=region,
        stage=config.stage,
        throttle_rate=config.throttle_rate,
        throttle_burst=config.throttle_burst,
        api_key=config.api_key,
    )
    apigateway = clients["apigateway"]
    api_id, resource_id, api_changed = ensure_api(apigateway, api, changes)
    if not stage_exists(apigateway, api_id, config.stage):
        create_throttled_stage(apigateway, api_id, resource_id, api, changes)
    account = clients["sts"].get_caller_identity()["Account"]
    source_arn = f"arn:aws:execute-api:{region}:{account}:{api_id}/*/*/{config.function}"
    statement = f"{config.function}-apigateway-{api_id}"
    ensure_permission(clients["lambda"], config.function, statement, source_arn, changes)
    wired = ensure_integration(apigateway, api_id, resource_id, api, changes)
    ensure_stage(apigateway, api_id, api, api_changed or wired, changes)
    key_value = ensure_api_key(apigateway, api_id, api, changes) if config.api_key else None
    return Deployment(changes, invoke_url(api_id, region, config.stage, config.function), key_value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handler.aws.deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--function", default="logitModel", help="function name (default logitModel)")
    parser.add_argument("--variant", default="lean", help=f"one of {', '.join(VARIANTS)} (default lean)")
    parser.add_argument("--bucket", required=True, help="S3 bucket for the package and the model")
    parser.add_argument("--region", help="default: the AWS configuration's (us-east-1 with --endpoint-url)")
    parser.add_argument("--endpoint-url", help="an AWS-compatible server, e.g. http://127.0.0.1:5000 (moto)")
    parser.add_argument(
        "--memory",
        type=positive_int,
        default=None,
        help="MB (default: the variant's size for this model: handler.variants.memory_size)",
    )
    parser.add_argument("--timeout", type=positive_int, default=3, help="seconds (default 3)")
    parser.add_argument("--role", help="execution role ARN (default: create a minimal one)")
    parser.add_argument(
        "--throttle-rate", type=positive_float, default=100.0, help="stage req/s (default 100)"
    )
    parser.add_argument("--throttle-burst", type=positive_int, default=50, help="stage burst (default 50)")
    parser.add_argument("--api-key", action="store_true", help="require an API key (usage plan + key)")
    parser.add_argument("--stage", default="staging")
    parser.add_argument("--arch", default="x86_64", choices=tuple(PLATFORMS))
    parser.add_argument(
        "--model-from-s3", action="store_true", help="MODEL_URI=s3://BUCKET/FUNCTION/model/..."
    )
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--package", type=Path, help="a zip from handler.aws.package (default: build one)")
    parser.add_argument(
        "--teardown", action="store_true", help="remove what this tool created for --function"
    )
    return parser


def _default_memory(variant, models: Path) -> int:
    """The variant's memory size for the model in ``models`` (said in one line)."""
    from handler.manifest import ManifestError
    from handler.manifest import read as read_manifest
    from handler.variants import memory_size

    try:
        manifest = read_manifest(models / "manifest.json")
    except ManifestError:
        manifest = None
    memory_mb, why = memory_size(variant, manifest)
    print(f"memory: {memory_mb} MB ({why})")
    return memory_mb


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.variant not in VARIANTS:
        parser.error(f"--variant {args.variant!r}: expected one of {', '.join(VARIANTS)}")
    variant = VARIANTS[args.variant]
    if args.model_from_s3 and variant.handler == SEED_HANDLER:
        parser.error(
            "--model-from-s3: the tutorial's handler loads a local file; choose a handler.app variant"
        )
    if not args.teardown and not (args.models / "manifest.json").is_file():
        parser.error(f"--models {str(args.models)!r}: no manifest.json; run python -m training")
    if args.package is not None and not args.package.is_file():
        parser.error(f"--package {str(args.package)!r}: no such file")
    config = DeployConfig(
        function=args.function,
        variant=variant,
        bucket=args.bucket,
        region=args.region,
        endpoint_url=args.endpoint_url,
        memory_mb=args.memory or _default_memory(variant, args.models),
        timeout_s=args.timeout,
        role_arn=args.role,
        throttle_rate=args.throttle_rate,
        throttle_burst=args.throttle_burst,
        api_key=args.api_key,
        stage=args.stage,
        arch=args.arch,
        model_from_s3=args.model_from_s3,
        models_dir=args.models,
        package=args.package,
        teardown=args.teardown,
    )
    try:
        result = deploy(config)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"error: {exc.operation_name}: {error.get('Code')}: {error.get('Message')}", file=sys.stderr)
        return 1
    except (DeployError, PackageError, WaiterError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for kind, name, action in result.changes.rows:
        print(f"  {kind:<22}{action:<11}{name}")
    if config.teardown:
        print("removed" if result.changes.changed else "nothing to remove")
        return 0
    print("changed" if result.changes.changed else "no changes")
    print(f"invoke URL: {result.invoke_url}")
    if result.api_key_value:
        print(f"API key (send as x-api-key): {result.api_key_value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
