"""Forcing a cold start through the Lambda API: the one place that does it.

How lambda-perf does it: UpdateFunctionConfiguration with a changed environment variable
(``BENCH_FORCE_COLD``, the function's other variables kept). Lambda then discards every
execution environment of the function, so the next Invoke starts a new one; the local
emulator does the same. The function returns once the ``function_updated`` waiter says the
update is done, so an Invoke right after it runs the new configuration. Times nothing.
"""

from __future__ import annotations

FORCE_COLD_VARIABLE = "BENCH_FORCE_COLD"


def force_cold_start(client, function: str, tag: str) -> None:
    """Make ``function``'s next invocation a cold start. ``client``: a boto3 Lambda client;
    ``tag``: the variable's new value, different on every call (e.g. ``f"{time.time_ns()}-{trial}"``)."""
    current = client.get_function_configuration(FunctionName=function)
    variables = dict(current.get("Environment", {}).get("Variables", {}))
    variables[FORCE_COLD_VARIABLE] = tag
    client.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    client.get_waiter("function_updated").wait(FunctionName=function)
