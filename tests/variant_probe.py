"""Run one handler variant in this (fresh) process and print what the tests check, as JSON.

``python -m tests.variant_probe VARIANT MODELS_DIR``: the first (cold) response, which heavy
libraries the variant imported, and the responses: for the tutorial's model, to all 1,024
inputs; for any other model, to each line of its ``requests.jsonl`` (a GET line's query as
``queryStringParameters``, a POST line's body as the JSON body of a POST proxy event).
"""

import importlib
import itertools
import json
import os
import sys
from pathlib import Path

from handler.manifest import read
from handler.tutorial import FEATURES, is_tutorial
from handler.variants import VARIANTS

HEAVY = ("numpy", "pandas", "sklearn", "scipy", "skops", "onnxruntime", "joblib")


def events(models: Path) -> list[dict]:
    if is_tutorial(read(models / "manifest.json").features):
        return [
            {"queryStringParameters": dict(zip(FEATURES, bits, strict=True))}
            for bits in itertools.product("01", repeat=len(FEATURES))
        ]
    result = []
    for line in (models / "requests.jsonl").read_text().splitlines():
        request = json.loads(line)
        if request.get("method", "GET") == "GET":
            result.append({"httpMethod": "GET", "queryStringParameters": request["query"], "body": None})
        else:
            body = request["body"]
            text = body if isinstance(body, str) else json.dumps(body)
            result.append({"httpMethod": "POST", "queryStringParameters": None, "body": text})
    return result


def main() -> None:
    variant = VARIANTS[sys.argv[1]]
    models = Path(sys.argv[2])
    os.environ.update(variant.environment(str(models)))
    module_name, function_name = variant.handler.rsplit(".", 1)
    stdout = sys.stdout
    sys.stdout = sys.stderr  # the tutorial prints every event
    handler = getattr(importlib.import_module(module_name), function_name)
    imported = sorted(name for name in HEAVY if name in sys.modules)
    responses = [handler(event, None) for event in events(models)]
    sys.stdout = stdout
    print(json.dumps({"imported": imported, "responses": responses}))


if __name__ == "__main__":
    main()
