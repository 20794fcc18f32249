"""The conformance suite: one case per emulated API Gateway / Lambda behaviour, each
with its source. The table of cases, sources and what is not emulated: docs/conformance.md."""
