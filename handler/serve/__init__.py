"""Alias package: `python -m handler.serve` runs `python -m handler.local.serve` (kept for old commands)."""
