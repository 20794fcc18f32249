"""The logit handlers, and the local API Gateway + Lambda emulator that serves them.

This package's ``__init__`` imports nothing: ``handler.app`` in its lean variant must start
without numpy, pandas or sklearn, and the emulator's modules are only imported by the server.
"""
