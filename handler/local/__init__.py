"""The local API Gateway + Lambda emulator: AWS's runtime client in real processes, no Docker.

Runs on the developer's machine, never inside a function. Modules: ``config`` (the TOML file),
``throttle`` (token buckets), ``runtime_api`` (the Lambda Runtime API each environment talks
to), ``pool`` (execution environments and their lifecycle), ``gateway`` (API Gateway REST
proxy), ``invoke_api`` (Lambda's Invoke and configuration API for boto3), ``logs`` (REPORT
lines), ``server`` (wires them together), ``serve`` (the command line), ``cpulatency`` (the
CPU idle regime, ``--low-latency``).
"""
