"""Run one handler variant in this (fresh) process and print what the tests check, as JSON.

``python -m tests.variant_probe VARIANT MODELS_DIR``: the predictions for all 1,024 inputs,
the first (cold) response, and which heavy libraries the variant imported.
"""

import importlib
import itertools
import json
import os
import sys

from handler.features import FEATURES
from handler.variants import VARIANTS

HEAVY = ("numpy", "pandas", "sklearn", "scipy", "skops", "onnxruntime", "joblib")


def main() -> None:
    variant = VARIANTS[sys.argv[1]]
    os.environ.update(variant.environment(sys.argv[2]))
    module_name, function_name = variant.handler.rsplit(".", 1)
    stdout = sys.stdout
    sys.stdout = sys.stderr  # the tutorial prints every event
    handler = getattr(importlib.import_module(module_name), function_name)
    imported = sorted(name for name in HEAVY if name in sys.modules)
    responses = []
    for bits in itertools.product("01", repeat=len(FEATURES)):
        event = {"queryStringParameters": dict(zip(FEATURES, bits, strict=True))}
        responses.append(handler(event, None))
    sys.stdout = stdout
    print(json.dumps({"imported": imported, "responses": responses}))


if __name__ == "__main__":
    main()
