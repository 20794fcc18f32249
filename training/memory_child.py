"""Run in a fresh interpreter by :mod:`training.memory`: load a model file, predict once, and
print one JSON line with this process's peak resident set size in KiB: ``VmHWM`` from
``/proc/self/status`` (the high-water mark of this program's own address space). Not
``getrusage().ru_maxrss``: Linux carries the pre-exec address space's peak into it, so a child
started from a large parent reports the parent's RSS (``ru_maxrss`` only where /proc is absent).

Arguments: the model file, its format (joblib, pickle or skops), a JSON file holding the first
request's row (``{"columns": [...], "row": [...], "named": bool, "proba": bool, "trusted": [...]}``)
and optionally the user's code directory (put first on ``sys.path``, as the function's is).
Imports only what loading that format needs, as the function does at init.
"""

import json
import resource
import sys
import warnings


def _peak_rss_kib() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    path, fmt, row_file = sys.argv[1:4]
    if len(sys.argv) > 4:
        sys.path.insert(0, sys.argv[4])
    with open(row_file, encoding="utf-8") as file:
        spec = json.load(file)
    with open(path, "rb") as file:
        data = file.read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a version mismatch is reported by the parent
        if fmt == "skops":
            import skops.io

            model = skops.io.loads(data, trusted=spec["trusted"])
        elif fmt == "pickle":
            import pickle

            model = pickle.loads(data)
        else:
            import io

            import joblib

            model = joblib.load(io.BytesIO(data))
        import numpy as np

        row = [float("nan") if value is None else value for value in spec["row"]]
        if spec["named"]:
            import pandas as pd

            x = pd.DataFrame([row], columns=spec["columns"])
            for name, kind in zip(spec["columns"], spec["types"], strict=True):
                x[name] = x[name].astype(np.float64 if kind == "number" else object)
        else:
            x = np.asarray([row], dtype=object if "string" in spec["types"] else np.float64)
        answer = model.predict_proba(x) if spec["proba"] else model.predict(x)
    peak_kib = _peak_rss_kib()
    print(json.dumps({"peak_rss_kib": peak_kib, "answer": np.asarray(answer).ravel().tolist()[:1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
