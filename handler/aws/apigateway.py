"""The REST API in front of the function, as the tutorial sets it up by hand, but idempotently.

``{function}-api`` (REGIONAL) with a ``/{function}`` resource, an ``ANY`` method and an
``AWS_PROXY`` integration; a stage deployed with **throttling always on** (method settings
``*/*``: rate and burst), and optionally an API key in a usage plan with the same throttle.
Same conventions as :mod:`handler.aws.resources`: look, act on a difference, tag, say what
was done; teardown removes only what carries this tool's tags.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from handler.aws.resources import Changes, DeployError, is_ours, tags_for


@dataclass(frozen=True)
class ApiSpec:
    function: str
    function_arn: str
    region: str
    stage: str
    throttle_rate: float
    throttle_burst: int
    api_key: bool

    @property
    def api_name(self) -> str:
        return f"{self.function}-api"

    @property
    def integration_uri(self) -> str:
        return (
            f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
            f"{self.function_arn}/invocations"
        )


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _all(apigateway, operation: str, **arguments) -> list[dict]:
    return [
        item for page in apigateway.get_paginator(operation).paginate(**arguments) for item in page["items"]
    ]


def find_api(apigateway, function: str) -> dict | None:
    for api in _all(apigateway, "get_rest_apis"):
        if api["name"] == f"{function}-api":
            if not is_ours(api.get("tags"), function):
                raise DeployError(f"REST API {api['name']} ({api['id']}) was not created by this tool")
            return api
    return None


def ensure_api(apigateway, spec: ApiSpec, changes: Changes) -> tuple[str, str, bool]:
    """The API's and the resource's ids, and whether anything changed (then the stage needs a
    new deployment). The integration is :func:`ensure_integration`'s."""
    changed = False
    api = find_api(apigateway, spec.function)
    if api is None:
        api = apigateway.create_rest_api(
            name=spec.api_name,
            description=f"Logistic-regression model {spec.function} (lambda-logit-bench)",
            endpointConfiguration={"types": ["REGIONAL"]},
            tags=tags_for(spec.function),
        )
        changed = changes.note("rest api", spec.api_name, "created") == "created"
    else:
        changes.note("rest api", f"{spec.api_name} ({api['id']})", "unchanged")
    api_id = api["id"]
    resources = _all(apigateway, "get_resources", restApiId=api_id)
    root = next(item for item in resources if item["path"] == "/")
    resource = next((item for item in resources if item["path"] == f"/{spec.function}"), None)
    if resource is None:
        resource = apigateway.create_resource(restApiId=api_id, parentId=root["id"], pathPart=spec.function)
        changed = True
        changes.note("resource", f"/{spec.function}", "created")
    resource_id = resource["id"]
    try:
        method = apigateway.get_method(restApiId=api_id, resourceId=resource_id, httpMethod="ANY")
    except ClientError as exc:
        if _code(exc) != "NotFoundException":
            raise
        method = None
    if method is None:
        apigateway.put_method(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod="ANY",
            authorizationType="NONE",
            apiKeyRequired=spec.api_key,
        )
        changed = True
        changes.note("method", f"ANY /{spec.function}", "created")
    elif bool(method.get("apiKeyRequired")) != spec.api_key:
        apigateway.update_method(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod="ANY",
            patchOperations=[
                {"op": "replace", "path": "/apiKeyRequired", "value": str(spec.api_key).lower()}
            ],
        )
        changed = True
        changes.note(
            "method", f"ANY /{spec.function} (API key {'required' if spec.api_key else 'off'})", "updated"
        )
    return api_id, resource_id, changed


def _integration(apigateway, api_id: str, resource_id: str) -> dict:
    try:
        return apigateway.get_integration(restApiId=api_id, resourceId=resource_id, httpMethod="ANY")
    except ClientError as exc:
        if _code(exc) != "NotFoundException":
            raise
        return {}


def stage_exists(apigateway, api_id: str, stage: str) -> bool:
    try:
        apigateway.get_stage(restApiId=api_id, stageName=stage)
        return True
    except ClientError as exc:
        if _code(exc) != "NotFoundException":
            raise
        return False


def create_throttled_stage(
    apigateway, api_id: str, resource_id: str, spec: ApiSpec, changes: Changes
) -> None:
    """First deployment: the stage is created, and throttled, while its method is still a MOCK,
    so that the function is never reachable through an unthrottled stage, not even for a moment."""
    if not _integration(apigateway, api_id, resource_id).get("type"):
        apigateway.put_integration(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod="ANY",
            type="MOCK",
            requestTemplates={"application/json": '{"statusCode": 503}'},
        )
    apigateway.create_deployment(restApiId=api_id, stageName=spec.stage, description="lambda-logit-bench")
    _throttle(apigateway, api_id, spec)
    changes.note("stage", f"{spec.stage} (throttled before the function is wired in)", "created")


def ensure_integration(apigateway, api_id: str, resource_id: str, spec: ApiSpec, changes: Changes) -> bool:
    integration = _integration(apigateway, api_id, resource_id)
    if integration.get("type") == "AWS_PROXY" and integration.get("uri") == spec.integration_uri:
        return False
    apigateway.put_integration(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod="ANY",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=spec.integration_uri,
    )
    action = "updated" if integration.get("type") == "AWS_PROXY" else "created"
    changes.note("integration", f"AWS_PROXY -> {spec.function}", action)
    return True


def _throttle(apigateway, api_id: str, spec: ApiSpec) -> None:
    apigateway.update_stage(
        restApiId=api_id,
        stageName=spec.stage,
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": f"{spec.throttle_rate:g}"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(spec.throttle_burst)},
        ],
    )


def ensure_stage(apigateway, api_id: str, spec: ApiSpec, redeploy: bool, changes: Changes) -> None:
    """Redeploy when the API changed; keep the stage's throttle at the requested values."""
    if redeploy:  # a new deployment, then the stage moved onto it: its settings stay as they are
        deployment = apigateway.create_deployment(restApiId=api_id, description="lambda-logit-bench")
        apigateway.update_stage(
            restApiId=api_id,
            stageName=spec.stage,
            patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment["id"]}],
        )
        changes.note("stage", spec.stage, "redeployed")
    stage = apigateway.get_stage(restApiId=api_id, stageName=spec.stage)
    settings = (stage.get("methodSettings") or {}).get("*/*", {})
    label = f"{spec.throttle_rate:g} req/s, burst {spec.throttle_burst}"
    if (
        settings.get("throttlingRateLimit") != float(spec.throttle_rate)
        or settings.get("throttlingBurstLimit") != spec.throttle_burst
    ):
        _throttle(apigateway, api_id, spec)
        changes.note("stage throttling", label, "updated")
    else:
        changes.note("stage throttling", label, "unchanged")


def ensure_api_key(apigateway, api_id: str, spec: ApiSpec, changes: Changes) -> str:
    """A usage plan on the stage with the stage's throttle, and a key in it; returns the key's value."""
    plan_name, key_name = f"{spec.function}-plan", f"{spec.function}-key"
    throttle = {"rateLimit": float(spec.throttle_rate), "burstLimit": spec.throttle_burst}
    plan = next((p for p in _all(apigateway, "get_usage_plans") if p["name"] == plan_name), None)
    if plan is None:
        plan = apigateway.create_usage_plan(
            name=plan_name,
            apiStages=[{"apiId": api_id, "stage": spec.stage}],
            throttle=throttle,
            tags=tags_for(spec.function),
        )
        changes.note("usage plan", plan_name, "created")
    elif plan.get("throttle", {}) != throttle:
        apigateway.update_usage_plan(
            usagePlanId=plan["id"],
            patchOperations=[
                {"op": "replace", "path": "/throttle/rateLimit", "value": f"{spec.throttle_rate:g}"},
                {"op": "replace", "path": "/throttle/burstLimit", "value": str(spec.throttle_burst)},
            ],
        )
        changes.note("usage plan", plan_name, "updated")
    else:
        changes.note("usage plan", plan_name, "unchanged")
    keys = [k for k in _all(apigateway, "get_api_keys", includeValues=True) if k["name"] == key_name]
    if keys:
        key = keys[0]
        changes.note("api key", key_name, "unchanged")
    else:
        key = apigateway.create_api_key(name=key_name, enabled=True, tags=tags_for(spec.function))
        changes.note("api key", key_name, "created")
    members = _all(apigateway, "get_usage_plan_keys", usagePlanId=plan["id"])
    if not any(member["id"] == key["id"] for member in members):
        apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    return key["value"]


def remove_api(apigateway, function: str, changes: Changes) -> None:
    for plan in _all(apigateway, "get_usage_plans"):
        if plan["name"] == f"{function}-plan" and is_ours(plan.get("tags"), function):
            for member in _all(apigateway, "get_usage_plan_keys", usagePlanId=plan["id"]):
                apigateway.delete_usage_plan_key(usagePlanId=plan["id"], keyId=member["id"])
            for stage in plan.get("apiStages", []):
                apigateway.update_usage_plan(
                    usagePlanId=plan["id"],
                    patchOperations=[
                        {"op": "remove", "path": "/apiStages", "value": f"{stage['apiId']}:{stage['stage']}"}
                    ],
                )
            apigateway.delete_usage_plan(usagePlanId=plan["id"])
            changes.note("usage plan", plan["name"], "deleted")
    for key in _all(apigateway, "get_api_keys"):
        if key["name"] == f"{function}-key" and is_ours(key.get("tags"), function):
            apigateway.delete_api_key(apiKey=key["id"])
            changes.note("api key", key["name"], "deleted")
    for api in _all(apigateway, "get_rest_apis"):
        if api["name"] == f"{function}-api" and is_ours(api.get("tags"), function):
            apigateway.delete_rest_api(restApiId=api["id"])
            changes.note("rest api", f"{api['name']} ({api['id']})", "deleted")
