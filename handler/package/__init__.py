"""Alias package: `python -m handler.package` runs `python -m handler.aws.package` (kept for old commands)."""
