"""The Locust plugin: ``plugin`` (users, the shape, event hooks), ``recorder`` (µs HDR
recording per endpoint and second), ``results`` (the results document and console table),
``options`` (our command-line flags), ``arrivals`` (open-loop schedules), ``scenarios``
(steady/step/spike/soak plans), ``webui`` (the web UI's µs tab). It hooks into Locust through
events only."""
