"""Idempotent create-or-update (and tear-down) of each AWS resource ``handler.aws.deploy`` manages.

Every function here looks first, then acts only on a difference, and returns what it did
(``created``, ``updated``, ``unchanged``, ``deleted``), so a second deploy with the same inputs
changes nothing and says so. Everything created carries two tags, ``managed-by`` and
``lambda-logit-bench:function``; teardown removes only what carries them, so a bucket or a
role the user brought is never deleted, and a function of the same name that this tool did not
create is never modified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

TAG_KEY = "managed-by"
TAG_VALUE = "lambda-logit-bench"
FUNCTION_TAG = "lambda-logit-bench:function"
RUNTIME = "python3.12"
ROLE_RETRY_S = 40.0  # a new IAM role takes a few seconds before Lambda may assume it


class DeployError(RuntimeError):
    """A resource is in the way or AWS refused; the message is one line."""


def tags_for(function: str) -> dict[str, str]:
    return {TAG_KEY: TAG_VALUE, FUNCTION_TAG: function}


def is_ours(tags: dict[str, str] | None, function: str) -> bool:
    return bool(tags) and tags.get(TAG_KEY) == TAG_VALUE and tags.get(FUNCTION_TAG) == function


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


@dataclass
class Changes:
    """What a run did, resource by resource, in order."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def note(self, kind: str, name: str, action: str) -> str:
        self.rows.append((kind, name, action))
        return action

    @property
    def changed(self) -> bool:
        return any(action != "unchanged" for _, _, action in self.rows)


# -- S3 -----------------------------------------------------------------------------------------
def ensure_bucket(s3, bucket: str, region: str, function: str, changes: Changes) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        changes.note("s3 bucket", bucket, "unchanged")
        return
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    arguments: dict = {"Bucket": bucket}
    if region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**arguments)
    tag_set = [{"Key": k, "Value": v} for k, v in tags_for(function).items()]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
    changes.note("s3 bucket", bucket, "created")


def ensure_object(s3, bucket: str, key: str, data: bytes, function: str, changes: Changes) -> None:
    """Upload unless an object with the same sha256 is already there."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == digest:
            changes.note("s3 object", f"s3://{bucket}/{key}", "unchanged")
            return
        action = "updated"
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
        action = "created"
    tagging = "&".join(f"{k}={v}" for k, v in tags_for(function).items())
    s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"sha256": digest}, Tagging=tagging)
    changes.note("s3 object", f"s3://{bucket}/{key}", action)


def remove_objects(s3, bucket: str, prefix: str, function: str, changes: Changes) -> None:
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    except ClientError as exc:
        if _code(exc) in ("NoSuchBucket", "404"):
            return
        raise
    for key in keys:
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
        if is_ours(tags, function):
            s3.delete_object(Bucket=bucket, Key=key)
            changes.note("s3 object", f"s3://{bucket}/{key}", "deleted")
    try:
        tag_set = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError:
        return
    ours = is_ours({t["Key"]: t["Value"] for t in tag_set}, function)
    if ours and not s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("Contents"):
        s3.delete_bucket(Bucket=bucket)
        changes.note("s3 bucket", bucket, "deleted")


# -- IAM ----------------------------------------------------------------------------------------
def role_policy(function: str, model_arn: str | None) -> dict:
    """Least privilege: its own log group, and reading its model when the model is on S3."""
    statements = [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:*:*:log-group:/aws/lambda/{function}:*",
        }
    ]
    if model_arn:
        statements.append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": model_arn})
    return {"Version": "2012-10-17", "Statement": statements}


TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def role_name(function: str) -> str:
    return f"{function}-logit-bench"


def ensure_role(iam, function: str, model_arn: str | None, changes: Changes) -> str:
    name = role_name(function)
    policy = role_policy(function, model_arn)
    try:
        role = iam.get_role(RoleName=name)["Role"]
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
        if not is_ours(tags, function):
            raise DeployError(f"IAM role {name} exists and was not created by this tool; pass --role ARN")
        current = iam.get_role_policy(RoleName=name, PolicyName="logit-bench")["PolicyDocument"]
        current = json.loads(current) if isinstance(current, str) else current
        if current == policy:
            changes.note("iam role", name, "unchanged")
            return role["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="logit-bench", PolicyDocument=json.dumps(policy))
        changes.note("iam role", name, "updated")
        return role["Arn"]
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
        Description=f"Execution role of the Lambda function {function} (lambda-logit-bench)",
        Tags=[{"Key": k, "Value": v} for k, v in tags_for(function).items()],
    )["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="logit-bench", PolicyDocument=json.dumps(policy))
    changes.note("iam role", name, "created")
    return role["Arn"]


def remove_role(iam, function: str, changes: Changes) -> None:
    name = role_name(function)
    try:
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
    except ClientError as exc:
        if _code(exc) == "NoSuchEntity":
            return
        raise
    if not is_ours(tags, function):
        return
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    iam.delete_role(RoleName=name)
    changes.note("iam role", name, "deleted")


# -- Lambda -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    role_arn: str
    memory_mb: int
    timeout_s: int
    arch: str
    environment: dict[str, str]
    bucket: str
    code_key: str
    code_sha256: bytes  # raw digest of the zip

    @property
    def code_sha256_b64(self) -> str:
        return base64.b64encode(self.code_sha256).decode("ascii")

    def configuration(self) -> dict:
        return {
            "Runtime": RUNTIME,
            "Handler": self.handler,
            "Role": self.role_arn,
            "MemorySize": self.memory_mb,
            "Timeout": self.timeout_s,
            "Environment": {"Variables": dict(self.environment)},
        }


def _retry_role(call: Callable[[], dict], sleep: Callable[[float], None] = time.sleep) -> dict:
    deadline = time.monotonic() + ROLE_RETRY_S
    while True:
        try:
            return call()
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            if "cannot be assumed" not in message or time.monotonic() > deadline:
                raise
            sleep(2.0)


def ensure_function(lam, spec: FunctionSpec, function_tags: dict[str, str], changes: Changes) -> str:
    current = _get_function(lam, spec.name)
    if current is None:
        created = _retry_role(
            lambda: lam.create_function(
                FunctionName=spec.name,
                Code={"S3Bucket": spec.bucket, "S3Key": spec.code_key},
                Architectures=[spec.arch],
                Tags=function_tags,
                Publish=False,
                **spec.configuration(),
            )
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=spec.name)
        changes.note("lambda function", spec.name, "created")
        return created["FunctionArn"]
    configuration = current["Configuration"]  # ownership was checked before anything was created
    arn = configuration["FunctionArn"]
    if configuration.get("CodeSha256") != spec.code_sha256_b64 or configuration.get(
        "Architectures", ["x86_64"]
    ) != [spec.arch]:
        lam.update_function_code(
            FunctionName=spec.name, S3Bucket=spec.bucket, S3Key=spec.code_key, Architectures=[spec.arch]
        )
        lam.get_waiter("function_updated_v2").wait(FunctionName=spec.name)
        changes.note("lambda code", spec.name, "updated")
    else:
        changes.note("lambda code", spec.name, "unchanged")
    wanted = spec.configuration()
    have = {
        "Runtime": configuration.get("Runtime"),
        "Handler": configuration.get("Handler"),
        "Role": configuration.get("Role"),
        "MemorySize": configuration.get("MemorySize"),
        "Timeout": configuration.get("Timeout"),
        "Environment": {"Variables": configuration.get("Environment", {}).get("Variables", {})},
    }
    if have != wanted:
        _retry_role(lambda: lam.update_function_configuration(FunctionName=spec.name, **wanted))
        lam.get_waiter("function_updated_v2").wait(FunctionName=spec.name)
        changes.note("lambda configuration", spec.name, "updated")
    else:
        changes.note("lambda configuration", spec.name, "unchanged")
    return arn


def _get_function(lam, function: str) -> dict | None:
    try:
        return lam.get_function(FunctionName=function)
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


def check_function_is_ours(lam, function: str) -> None:
    """Before anything is created: a same-named function we did not create stops the deploy."""
    current = _get_function(lam, function)
    if current is not None and not is_ours(current.get("Tags"), function):
        raise DeployError(
            f"Lambda function {function} exists and was not created by this tool; refusing to change it"
        )


def remove_function(lam, function: str, changes: Changes) -> None:
    current = _get_function(lam, function)
    if current is not None and is_ours(current.get("Tags"), function):
        lam.delete_function(FunctionName=function)
        changes.note("lambda function", function, "deleted")


def ensure_permission(lam, function: str, statement_id: str, source_arn: str, changes: Changes) -> None:
    try:
        policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
        if any(statement.get("Sid") == statement_id for statement in policy.get("Statement", [])):
            changes.note("lambda permission", statement_id, "unchanged")
            return
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
    lam.add_permission(
        FunctionName=function,
        StatementId=statement_id,
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=source_arn,
    )
    changes.note("lambda permission", statement_id, "created")
