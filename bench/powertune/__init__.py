"""``python -m bench.powertune``: AWS Lambda Power Tuning's question, with percentiles and cold starts.

One module, one job: ``config`` (the settings and argument types), ``strategy`` (Power Tuning's
rules and trimmed mean, pure), ``session`` (a function's configuration changed and put back,
signals), ``measure`` (one size: cold starts, warm invocations, gates, cost), ``sweep`` (every
size of a function, the recommendations), ``calibrate`` (lambda-perf's function beside its
published figure), ``run`` (where the Lambda API is, the results file), ``__main__`` (the CLI).
"""
