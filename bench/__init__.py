"""Measurements: in-process, cold start, and Locust load tests. Each writes versioned JSON."""
