"""The local API Gateway + Lambda emulator: AWS's runtime client in real processes, no Docker.

Runs on the developer's machine, never inside a function. Modules: ``config`` (the TOML file),
``throttle`` (token buckets), ``runtime_api`` (the Lambda Runtime API each environment talks
to), ``pool`` (scheduling, concurrency, reaping), ``environment`` (one execution
environment's wiring), ``lifecycle`` (its state machine, clock injected), ``process`` (its OS
process), ``invocation`` (an invocation and its outcome), ``resources`` (Lambda's limits per
environment: memory, CPU share, freeze) over ``cgroups`` + ``cgroupgroup`` (the kernel's
groups), ``ephemeral`` (/tmp) on ``diskimage`` (its disk), ``supervisor`` (clean-up after a
crash), ``contention`` (CPU time beside wall time), ``gateway`` (API
Gateway REST proxy), ``invoke_api`` (Lambda's Invoke and configuration API for boto3), ``logs`` (REPORT
lines), ``server`` (wires them together), ``serve`` (the command line), ``cpulatency`` (the
CPU idle regime, ``--low-latency``).
"""
