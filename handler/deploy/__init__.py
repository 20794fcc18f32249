"""Alias package: `python -m handler.deploy` runs `python -m handler.aws.deploy` (kept for old commands)."""
