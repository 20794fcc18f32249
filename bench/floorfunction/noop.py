"""The floor: a Lambda handler that does nothing and returns.

Deployed in the emulator as ``floor-noop`` (``handler/local/default.toml``; its code directory is
this folder alone, so its init imports nothing but the runtime). Its warm Duration at a memory
size is what the Runtime API path, the thaw and the emulator's per-invocation reads add to any
function's there: ``python -m bench.powertune`` measures it beside every size (docs/powertune.md).
"""


def handler(event, context):
    return {"statusCode": 200, "body": "{}"}
