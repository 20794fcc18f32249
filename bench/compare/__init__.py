"""``python -m bench.compare``: is the new version slower? Pairs alike runs of two sides and
judges each figure over the runs (``stats``: the arithmetic; ``figures``: what each kind
offers; ``engine``: pairing; ``outputs``: console, JUnit XML, Markdown)."""
