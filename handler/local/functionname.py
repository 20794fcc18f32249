"""Lambda's ``FunctionName`` and ``Qualifier``, resolved as the Invoke and GetFunction APIs resolve them.

Pure. The forms (botocore lambda service-2.json ``InvocationRequest.FunctionName``; API_Invoke,
https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): a name (``my-function``), a
name with a qualifier (``my-function:v1``), a function ARN
(``arn:aws:lambda:us-west-2:123456789012:function:my-function``) or a partial ARN
(``123456789012:function:my-function``), each optionally with ``:qualifier``. The emulator has
one version per function, ``$LATEST``, and no aliases: any other qualifier is not found, as AWS
answers an unknown version or alias. The errors are the ones AWS answered in LocalStack's
recordings against AWS (localstack/localstack tests/aws/services/lambda_/test_lambda_api.snapshot.json
and test_lambda.snapshot.json, ``@markers.aws.validated``, recorded 2025-11).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LATEST = "$LATEST"
# botocore's NamespacedFunctionName (2026), without its length limits.
_FUNCTION_NAME = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):"
    r"(?P<account>\d{12}):function:"
    r"|(?P<partial_account>\d{12}):function:)?"
    r"(?P<name>[a-zA-Z0-9\-_.]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_]+))?"
)
_QUALIFIER = re.compile(r"\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_$]+")


@dataclass(frozen=True)
class ApiError(Exception):
    """An error the Invoke API answers: HTTP status, ``x-amzn-ErrorType``, the message."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class FunctionRef:
    name: str
    qualifier: str | None  # as given (None: none given, which means $LATEST)


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier is not None else arn


def parse(function_name: str, qualifier: str | None, region: str, account: str) -> FunctionRef:
    """``FunctionName`` (+ the ``Qualifier`` query parameter) → name and qualifier, or ApiError."""
    match = _FUNCTION_NAME.fullmatch(function_name)
    if match is None or len(function_name) > 256:
        raise ApiError(
            400,
            "ValidationException",
            f"1 validation error detected: Value '{function_name}' at 'functionName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?"
            r"(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?",
        )
    name = match.group("name")
    if len(name) > 64:  # "If you specify only the function name, it is limited to 64 characters"
        raise ApiError(
            400,
            "ValidationException",
            f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
            "constraint: Member must have length less than or equal to 64",
        )
    arn_region = match.group("region")
    if arn_region is not None and arn_region != region:
        # test_get_function_wrong_region[invoke]: 404 ResourceNotFoundException
        raise ApiError(
            404,
            "ResourceNotFoundException",
            f"Functions from '{arn_region}' are not reachable in this region ('{region}')",
        )
    arn_account = match.group("account") or match.group("partial_account")
    if arn_account is not None and arn_account != account:
        # Another account's function: not found here (inferred; AWS would check permissions).
        raise ApiError(
            404, "ResourceNotFoundException", f"Function not found: {function_arn(region, arn_account, name)}"
        )
    derived = match.group("qualifier")
    if qualifier is not None:
        if not _QUALIFIER.fullmatch(qualifier) or len(qualifier) > 128:
            raise ApiError(
                400,
                "ValidationException",
                f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed to satisfy "
                r"constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
            )
        if derived is not None and derived != qualifier:
            # test_function_name_and_qualifier_validation[latest_version_with_additional_qualifier-invoke]
            raise ApiError(
                400,
                "InvalidParameterValueException",
                "The derived qualifier from the function name does not match the specified qualifier.",
            )
    return FunctionRef(name, qualifier if qualifier is not None else derived)


def not_found(region: str, account: str, ref: FunctionRef, invoke: bool) -> ApiError:
    """ResourceNotFoundException for a function (or qualifier) that does not exist. Invoke names
    ``:$LATEST`` when no qualifier was given (test_lambda.snapshot.json, invoke of "doesnotexist",
    recorded 2025-11-24); GetFunction does not (test_lambda_api.snapshot.json)."""
    qualifier = ref.qualifier if ref.qualifier is not None else (LATEST if invoke else None)
    return ApiError(
        404,
        "ResourceNotFoundException",
        f"Function not found: {function_arn(region, account, ref.name, qualifier)}",
    )
