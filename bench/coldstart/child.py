"""One cold-start trial, run by ``bench.coldstart`` as a fresh interpreter (a script, not ``-m``).

argv: ``<sys.path entries, os.pathsep-separated> <module.function> <format> <input path>
<environment as K=V, ;-separated> <warm_calls> [<event, marshal as hex>]``; run with ``python -S`` (see
``bench.coldstart.process.child_command``). Any handler (``--handler``): format ``custom`` and
the libraries to import apart, comma-separated, in place of the input path; no support modules;
the event given (default: the tutorial's query). Imports nothing of ours before the handler. Records raw
``perf_counter_ns`` instants (CLOCK_MONOTONIC, comparable with the parent's spawn instant) and prints one JSON
line; computes no statistics. Order of work, as in a Lambda environment's INIT then INVOKE:
the libraries the variant needs, each imported apart (numpy, pandas, sklearn, joblib, skops,
onnxruntime); the handler's own modules; the handler module itself, whose import is the
model load (read + sha256 check + deserialize); the first invocation; then ``warm_calls``
invocations into an HdrHistogram (ns). Peak RSS from ``getrusage`` (Lambda's Max Memory
Used). The handler's prints go to /dev/null.
"""

import time

READY_NS = time.perf_counter_ns()

import os  # noqa: E402
import sys  # noqa: E402

LIBRARIES = {  # what each (format, input path) needs, in import order
    ("joblib", "pandas"): ("numpy", "pandas", "sklearn", "joblib"),
    ("joblib", "numpy"): ("numpy", "sklearn", "joblib"),
    ("pickle", "pandas"): ("numpy", "pandas", "sklearn"),
    ("pickle", "numpy"): ("numpy", "sklearn"),
    ("skops", "pandas"): ("numpy", "pandas", "sklearn", "skops.io"),
    ("skops", "numpy"): ("numpy", "sklearn", "skops.io"),
    ("json", "python"): (),
    ("json", "numpy"): ("numpy",),
    ("onnx", "numpy"): ("numpy", "onnxruntime"),
}
HANDLER_SUPPORT = ("handler.features", "handler.artifacts", "handler.predictors")


def main() -> None:
    paths, handler_name, model_format, input_path, environment, warm_calls = sys.argv[1:7]
    custom = model_format == "custom"
    sys.path[1:1] = paths.split(os.pathsep)
    instants = {"ready": READY_NS}
    os.environ.update(item.split("=", 1) for item in environment.split(";") if item)
    imports = {}
    libraries = (
        [name for name in input_path.split(",") if name] if custom else LIBRARIES[(model_format, input_path)]
    )
    for library in libraries:
        started = time.perf_counter_ns()
        __import__(library)
        imports[library.split(".")[0]] = time.perf_counter_ns() - started
    started = time.perf_counter_ns()
    for module in () if custom else HANDLER_SUPPORT:
        __import__(module)
    instants["handler_code_ns"] = time.perf_counter_ns() - started
    module_name, function_name = handler_name.rsplit(".", 1)
    event = {"queryStringParameters": {"G1": "1", "G2": "0", "G3": "1", "G4": "1", "G5": "0",
                                       "G6": "0", "G7": "1", "G8": "0", "G9": "1", "G10": "0"}}  # fmt: skip
    if len(sys.argv) > 7 and sys.argv[7]:  # marshal, hex: a built-in module, nothing to import
        import marshal

        event = marshal.loads(bytes.fromhex(sys.argv[7]))
    with open(os.devnull, "w") as devnull:
        real_stdout, sys.stdout = sys.stdout, devnull
        try:
            started = time.perf_counter_ns()
            module = __import__(module_name, fromlist=[function_name])
            instants["load_ns"] = time.perf_counter_ns() - started
            handler = getattr(module, function_name)
            started = time.perf_counter_ns()
            response = handler(event, None)
            finished = time.perf_counter_ns()
            instants["first_invoke_ns"] = finished - started
            instants["first_done"] = finished
            warm = None
            if int(warm_calls):  # none: nothing imported after the cold path (-X importtime runs)
                from bench.latency import LatencyRecorder  # after the cold path: not part of it

                warm = LatencyRecorder("ns")
                clock = time.perf_counter_ns
                for _ in range(int(warm_calls)):
                    started = clock()
                    handler(event, None)
                    warm.record_ns(clock() - started)
        finally:
            sys.stdout = real_stdout
    import json
    import resource

    print(
        json.dumps(
            {
                "instants": instants,
                "imports_ns": imports,
                "warm_ns": warm.encode() if warm is not None and warm.count else "",
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "body": response.get("body") if isinstance(response, dict) else None,
                "status": response.get("statusCode") if isinstance(response, dict) else None,
            }
        )
    )


if __name__ == "__main__":
    main()
