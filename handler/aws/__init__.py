"""Deploying the function to AWS with boto3: ``package`` (the zip), ``deploy`` (Lambda, API
Gateway, usage plan; idempotent, tagged, with teardown), ``resources`` / ``apigateway`` (the
resource helpers), ``clients`` (boto3 sessions). Runs on the developer's machine, never inside
a function.
"""
