"""``python -m handler.serve``: the local API Gateway + Lambda emulator.

Deploys every function of the configuration (default: ``handler/local/default.toml``, the tutorial's
function as ``logitModel`` and one ``logit-<variant>`` per production variant), prints their
URLs, serves until SIGINT/SIGTERM, then drains in-flight requests and stops every environment
and removes its cgroups. The first lines say which resource model enforces Lambda's limits
(``handler.local.resources``): a cgroup version, or the host model, which enforces nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

from bench.cli import positive_float
from handler.local import cpulatency
from handler.local.cgroups import CgroupUnavailable
from handler.local.config import (
    DEFAULT_CONFIG,
    INIT_CPU_POLICIES,
    RESOURCE_MODELS,
    ConfigError,
    Throttle,
    check_resources,
    load_config,
)
from handler.local.functions import config_for_models
from handler.local.resources import ResourceModel
from handler.local.server import Emulator, run_until_stopped


def _port(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m handler.serve", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, help="default: the config's (3000); 0 picks one")
    parser.add_argument("--throttle-rate", type=positive_float, help="stage bucket, req/s")
    parser.add_argument("--throttle-burst", type=int, help="stage bucket depth")
    parser.add_argument("--models", type=Path, help="directory of trained models (MODEL_URI)")
    parser.add_argument("--functions", help="deploy only these functions (comma-separated)")
    parser.add_argument(
        "--lambda-throttle-status",
        type=int,
        choices=(429, 500),
        help="gateway status for a Lambda concurrency throttle (AWS: 500; 429 as a Gateway Response)",
    )
    parser.add_argument("--idle-timeout", type=positive_float, help="seconds (default 600)")
    parser.add_argument("--log-file", type=Path, default=Path("results/emulator.log"))
    parser.add_argument("--quiet", action="store_true", help="no REPORT lines on stdout")
    parser.add_argument(
        "--resource-model",
        choices=RESOURCE_MODELS,
        help="how Lambda's memory limit, CPU share and freeze are enforced (default: the config's, "
        "auto: cgroup v2, else v1, else host; host enforces nothing)",
    )
    parser.add_argument("--init-cpu", choices=INIT_CPU_POLICIES, help="CPU during init (default: boost)")
    parser.add_argument(
        "--freeze",
        action=argparse.BooleanOptionalAction,
        help="freeze environments between invocations, as Lambda does (default: the config's)",
    )
    parser.add_argument(
        "--contention-factor",
        type=positive_float,
        help="wall over CPU time at the allowed share beyond which a phase on a saturated host is "
        "flagged contended (default 1.5)",
    )
    parser.add_argument(
        "--low-latency",
        action="store_true",
        help="hold a 0 µs CPU latency limit (/dev/cpu_dma_latency) while serving: idle CPUs poll "
        "instead of halting, which on a VM removes most of a warm request's wake-up cost; "
        "needs write access to the device (see handler/local/cpulatency.py)",
    )
    return parser


def run_event_loop(coroutine) -> None:
    """uvloop when installed (about 10 % less gateway overhead here), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.models is not None:
        if not args.models.is_dir():
            parser.error(f"--models {str(args.models)!r}: not a directory")
        try:  # a user's model: the functions of the variants that apply to it (handler.variants)
            config = config_for_models(config, args.config, args.models)
        except ConfigError as exc:
            parser.error(str(exc))
    if args.functions:
        wanted = [name.strip() for name in args.functions.split(",") if name.strip()]
        unknown = [name for name in wanted if config.function(name) is None]
        if unknown:
            parser.error(f"--functions: unknown {', '.join(map(repr, unknown))}")
        config = replace(config, functions=tuple(f for f in config.functions if f.name in wanted))
    throttle = Throttle(
        rate=args.throttle_rate or config.throttle.rate,
        burst=args.throttle_burst if args.throttle_burst is not None else config.throttle.burst,
    )
    if throttle.burst < 1:
        parser.error(f"--throttle-burst must be at least 1, not {throttle.burst}")
    config = replace(
        config,
        host=args.host,
        port=args.port if args.port is not None else config.port,
        throttle=throttle,
        idle_timeout_s=args.idle_timeout or config.idle_timeout_s,
        lambda_throttle_status=args.lambda_throttle_status or config.lambda_throttle_status,
        log_file=args.log_file,
        quiet=args.quiet,
        resource_model=args.resource_model or config.resource_model,
        init_cpu=args.init_cpu or config.init_cpu,
        freeze=config.freeze if args.freeze is None else args.freeze,
        contention_factor=args.contention_factor or config.contention_factor,
    )
    try:
        check_resources(config, "--contention-factor")
    except ConfigError as exc:
        parser.error(str(exc))
    # Warnings (e.g. a request the HTTP parser refused) as one line each on stderr.
    logging.basicConfig(level=logging.WARNING, format="emulator: %(levelname)s %(name)s: %(message)s")
    with contextlib.ExitStack() as stack:
        if args.low_latency:
            try:
                stack.enter_context(cpulatency.held(0))
            except cpulatency.CpuLatencyUnavailable as exc:
                print(f"error: --low-latency: {exc}", file=sys.stderr)
                return 2
        try:
            resources = ResourceModel.detect(config)
        except CgroupUnavailable as exc:
            print(f"error: --resource-model {config.resource_model}: {exc}", file=sys.stderr)
            return 2
        stack.callback(resources.close)  # again after Emulator.stop: harmless; if it never ran: needed
        try:
            run_event_loop(_serve(config, resources, args.low_latency))
        except OSError as exc:
            print(f"error: cannot listen on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr)
            return 2
    return 0


async def _serve(config, resources: ResourceModel, low_latency: bool = False) -> None:
    emulator = Emulator(config, resources)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    port = await emulator.start()
    print(f"emulator: API Gateway stage '{config.stage}' and Lambda API on http://{config.host}:{port}")
    for name, url in emulator.urls().items():
        print(f"  {name:<18} {url}")
    for missing in emulator.missing_models():
        print(f"  warning: no model for {missing} (run python -m training)")
    if low_latency:
        print(f"  CPU latency limit 0 µs held ({cpulatency.DEVICE}): idle CPUs poll")
    print(resources.summary())
    groups, directories = resources.stale_removed
    if groups or directories:
        print(f"resources: removed {groups} group(s), {directories} /tmp folder(s) left by dead emulators")
    print(f"log: {config.log_file}  (Ctrl-C to stop)", flush=True)
    await run_until_stopped(emulator, stop)
    print("emulator: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
