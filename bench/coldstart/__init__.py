"""Cold starts: ``profiler`` (the CLI, process mode: a fresh interpreter per trial), ``child``
(what runs in that interpreter), ``endpoint`` (cold starts through the emulator or AWS, from
REPORT lines), ``cloudwatch`` (REPORT lines from CloudWatch Logs)."""
