"""The emulator's configuration: a TOML file (``handler/local/default.toml`` ships with the project)."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent / "default.toml"
RESOURCE_MODELS = ("auto", "cgroup-v1", "cgroup-v2", "host")
INIT_CPU_POLICIES = ("boost", "memory")
# The runtime the environments run: ``sys.executable`` (handler.local.process), so a function's
# ``runtime`` must name this interpreter (AWS_EXECUTION_ENV is ``AWS_Lambda_<runtime>``,
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
HOST_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
# Stage variables (botocore apigateway CreateStage ``variables``): "Variable names can have
# alphanumeric and underscore characters, and the values must match [A-Za-z0-9-._~:/?#&=,]+."
STAGE_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_]+")
STAGE_VARIABLE_VALUE = re.compile(r"[A-Za-z0-9\-._~:/?#&=,]+")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Throttle:
    rate: float
    burst: int


@dataclass(frozen=True)
class ApiKey:
    value: str
    rate: float
    burst: int


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    handler: str
    code_dir: Path
    memory_mb: int = 128
    timeout_s: float = 3.0
    reserved_concurrency: int = 10
    api_key_required: bool = False
    env: dict[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    ephemeral_storage_mb: int = 512  # /tmp (handler.local.ephemeral)
    runtime: str = HOST_RUNTIME  # GetFunctionConfiguration's Runtime; must be the interpreter's
    # Asynchronous invocation (PutFunctionEventInvokeConfig): retries after a function error
    # (0..2, default 2) and the age after which an event is dropped (60..21600 s, default 6 h),
    # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
    maximum_retry_attempts: int = 2
    maximum_event_age_s: int = 21_600

    def available(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.requires)


@dataclass(frozen=True)
class EmulatorConfig:
    stage: str = "staging"
    # The REST API (handler.local.events): its id (the Host and domainName are
    # ``{api_id}.execute-api.{region}.amazonaws.com``; AWS's sample event's id), the stage's
    # variables and the API's binaryMediaTypes.
    api_id: str = "1234567890"
    stage_variables: dict[str, str] = field(default_factory=dict)
    binary_media_types: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 3000
    throttle: Throttle = Throttle(rate=10_000.0, burst=5_000)
    api_keys: tuple[ApiKey, ...] = ()
    functions: tuple[FunctionConfig, ...] = ()
    idle_timeout_s: float = 600.0
    init_timeout_s: float = 10.0
    integration_timeout_s: float = 29.0
    lambda_throttle_status: int = 500
    region: str = "us-east-1"
    log_file: Path | None = None
    quiet: bool = False
    # The resource model (handler.local.resources): cgroup version or "host" (nothing enforced)
    resource_model: str = "auto"
    init_cpu: str = "boost"  # CPU during init: "boost" (up to 2 vCPUs) or "memory" (its share)
    freeze: bool = True  # freeze an environment between invocations, as Lambda (its cost: docs/benchmarks.md)
    contention_factor: float = 1.5  # wall over CPU-at-share beyond which a phase may be contended

    def function(self, name: str) -> FunctionConfig | None:
        return next((function for function in self.functions if function.name == name), None)

    def with_models_dir(self, models_dir: Path) -> EmulatorConfig:
        """Point every function's ``MODEL_URI`` at ``models_dir`` (same file name)."""
        functions = []
        for function in self.functions:
            env = dict(function.env)
            if "MODEL_URI" in env and not env["MODEL_URI"].startswith("s3://"):
                env["MODEL_URI"] = str(models_dir.resolve() / Path(env["MODEL_URI"]).name)
            functions.append(replace(function, env=env))
        return replace(self, functions=tuple(functions))


def _require(table: dict, key: str, kind: type | tuple[type, ...], where: str):
    if key not in table:
        raise ConfigError(f"{where}: missing {key!r}")
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ConfigError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _optional(table: dict, key: str, kind: type | tuple[type, ...], default, where: str):
    return _require(table, key, kind, where) if key in table else default


def _function(table: dict, base: Path, index: int, path: Path) -> FunctionConfig:
    where = f"{path}: functions[{index}]"
    env = _optional(table, "env", dict, {}, where)
    if not all(isinstance(value, str) for value in env.values()):
        raise ConfigError(f"{where}: every env value must be a string")
    function = FunctionConfig(
        name=_require(table, "name", str, where),
        handler=_require(table, "handler", str, where),
        code_dir=(base / _optional(table, "code_dir", str, ".", where)).resolve(),
        memory_mb=_optional(table, "memory_mb", int, 128, where),
        timeout_s=float(_optional(table, "timeout_s", (int, float), 3.0, where)),
        reserved_concurrency=_optional(table, "reserved_concurrency", int, 10, where),
        api_key_required=_optional(table, "api_key_required", bool, False, where),
        env=dict(env),
        requires=tuple(_optional(table, "requires", list, [], where)),
        ephemeral_storage_mb=_optional(table, "ephemeral_storage_mb", int, 512, where),
        runtime=_optional(table, "runtime", str, HOST_RUNTIME, where),
        maximum_retry_attempts=_optional(table, "maximum_retry_attempts", int, 2, where),
        maximum_event_age_s=_optional(table, "maximum_event_age_s", int, 21_600, where),
    )
    if function.runtime != HOST_RUNTIME:
        raise ConfigError(
            f"{where}: runtime {function.runtime!r} is not the interpreter that runs the environments "
            f"({HOST_RUNTIME}, {sys.executable}); set runtime = {HOST_RUNTIME!r} or run the emulator "
            f"with {function.runtime}"
        )
    if not 0 <= function.maximum_retry_attempts <= 2:
        raise ConfigError(
            f"{where}: maximum_retry_attempts must be 0..2, not {function.maximum_retry_attempts}"
        )
    if not 60 <= function.maximum_event_age_s <= 21_600:
        raise ConfigError(
            f"{where}: maximum_event_age_s must be 60..21600, not {function.maximum_event_age_s}"
        )
    if not function.code_dir.is_dir():  # else the first invocation would be a 500
        raise ConfigError(f"{where}: code_dir {function.code_dir} is not a directory")
    if "." not in function.handler:
        raise ConfigError(f"{where}: handler {function.handler!r} must be module.function")
    if not 128 <= function.memory_mb <= 10_240:
        raise ConfigError(f"{where}: memory_mb must be 128..10240, not {function.memory_mb}")
    if not 0 < function.timeout_s <= 900:
        raise ConfigError(f"{where}: timeout_s must be in (0, 900], not {function.timeout_s}")
    if function.reserved_concurrency < 1:
        raise ConfigError(f"{where}: reserved_concurrency must be at least 1")
    if not 512 <= function.ephemeral_storage_mb <= 10_240:
        raise ConfigError(
            f"{where}: ephemeral_storage_mb must be 512..10240, not {function.ephemeral_storage_mb}"
        )
    return function


def _api_settings(document: dict, where: str) -> dict:
    """``api_id``, ``[stage_variables]`` and ``binary_media_types``, checked as API Gateway checks them."""
    api_id = _optional(document, "api_id", str, "1234567890", where)
    if not re.fullmatch(r"[a-z0-9]{10}", api_id):
        raise ConfigError(f"{where}: api_id must be 10 lowercase letters or digits, not {api_id!r}")
    variables = _optional(document, "stage_variables", dict, {}, where)
    for name, value in variables.items():
        if not STAGE_VARIABLE_NAME.fullmatch(name):
            raise ConfigError(f"{where}: stage variable name {name!r}: letters, digits and _ only")
        if not isinstance(value, str) or not STAGE_VARIABLE_VALUE.fullmatch(value):
            raise ConfigError(
                f"{where}: stage variable {name!r} must be a string matching [A-Za-z0-9-._~:/?#&=,]+"
            )
    types = _optional(document, "binary_media_types", list, [], where)
    if not all(isinstance(kind, str) and re.fullmatch(r"[^/\s]+/[^/\s]+", kind) for kind in types):
        raise ConfigError(f"{where}: binary_media_types must be media types such as 'image/png' or '*/*'")
    return {"api_id": api_id, "stage_variables": dict(variables), "binary_media_types": tuple(types)}


def check_resources(config: EmulatorConfig, where: str) -> EmulatorConfig:
    """The resource settings must name a known model and policy; the factor must exceed 1."""
    if config.resource_model not in RESOURCE_MODELS:
        raise ConfigError(
            f"{where}: resource_model must be one of {', '.join(RESOURCE_MODELS)}, "
            f"not {config.resource_model!r}"
        )
    if config.init_cpu not in INIT_CPU_POLICIES:
        raise ConfigError(
            f"{where}: init_cpu must be one of {', '.join(INIT_CPU_POLICIES)}, not {config.init_cpu!r}"
        )
    if not config.contention_factor > 1:
        raise ConfigError(f"{where}: contention_factor must be over 1, not {config.contention_factor}")
    return config


def load_config(path: Path = DEFAULT_CONFIG) -> EmulatorConfig:
    """Read and check a configuration file."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    base = Path(path).resolve().parent
    where = str(path)
    throttle_table = _optional(document, "throttle", dict, {}, where)
    throttle = Throttle(
        rate=float(_optional(throttle_table, "rate", (int, float), 10_000, f"{where} [throttle]")),
        burst=_optional(throttle_table, "burst", int, 5_000, f"{where} [throttle]"),
    )
    keys = tuple(
        ApiKey(
            value=_require(key, "value", str, f"{where} api_keys[{i}]"),
            rate=float(_optional(key, "rate", (int, float), 100, f"{where} api_keys[{i}]")),
            burst=_optional(key, "burst", int, 50, f"{where} api_keys[{i}]"),
        )
        for i, key in enumerate(_optional(document, "api_keys", list, [], where))
    )
    functions = tuple(
        _function(table, base, index, Path(path))
        for index, table in enumerate(_optional(document, "functions", list, [], where))
    )
    names = [function.name for function in functions]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{where}: function names repeated: {', '.join(duplicates)}")
    config = EmulatorConfig(
        stage=_optional(document, "stage", str, "staging", where),
        **_api_settings(document, where),
        port=_optional(document, "port", int, 3000, where),
        throttle=throttle,
        api_keys=keys,
        functions=functions,
        idle_timeout_s=float(_optional(document, "idle_timeout_s", (int, float), 600, where)),
        init_timeout_s=float(_optional(document, "init_timeout_s", (int, float), 10, where)),
        lambda_throttle_status=_optional(document, "lambda_throttle_status", int, 500, where),
        resource_model=_optional(document, "resource_model", str, "auto", where),
        init_cpu=_optional(document, "init_cpu", str, "boost", where),
        freeze=_optional(document, "freeze", bool, True, where),
        contention_factor=float(_optional(document, "contention_factor", (int, float), 1.5, where)),
    )
    return check_resources(config, where)
