"""Load-test a model served as a Lambda function behind API Gateway (or our local emulator).

    locust -f locustfile.py --host http://127.0.0.1:3000 --headless -u 4 -r 4 -t 30s

Every standard Locust flag works. Ours (``locust -f locustfile.py --help``): ``--function``,
``--target-ms``, ``--percentile``, ``--arrival closed|open``, ``--rate``, ``--arrival-dist``,
``--scenario steady|step|spike|soak``, ``--payload``, ``--verify``, ``--results``. The logic
lives in ``bench/``: the plugin (``bench.load.plugin``), the scenario plans (``bench.load.scenarios``).
"""

from bench.load.plugin import (
    LambdaUser,
    ScenarioShape,  # noqa: F401  (Locust finds the load shape here)
)


class LogitUser(LambdaUser):
    """A client of the logit endpoint(s) named by ``--function``."""
