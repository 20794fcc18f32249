"""Cold starts. ``profiler`` (the command line, ``python -m bench.coldstart``), ``config`` (its
settings), ``process`` (process mode: a fresh interpreter per trial), ``child`` (what runs in
that interpreter), ``endpoint`` (cold starts through the emulator or AWS, from REPORT lines),
``forcing`` (the one way to force a cold start through the Lambda API), ``gates`` (warm p99
and cold p50 against their targets), ``cloudwatch`` (REPORT lines from CloudWatch Logs). The
results kinds are in ``bench.results.coldstart``."""
