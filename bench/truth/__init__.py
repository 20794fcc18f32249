"""The harness checked against a known truth: ``server`` (an endpoint whose latency
distribution is known) and ``check`` (Locust against it: does the harness measure it?)."""
