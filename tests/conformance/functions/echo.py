"""Functions for the conformance suite (tests/conformance/): they show what Lambda gave them.

``handler`` answers the event, the context's client_context and the runtime's AWS_EXECUTION_ENV;
``reply`` answers whatever reply the request's body describes, as LocalStack's
``LAMBDA_RESPONSE_FROM_BODY`` does in its recordings against AWS, so that a test can try any reply.
"""

import base64
import json
import os


def handler(event, context):
    client_context = context.client_context
    body = {
        "event": event,
        "client_context": None
        if client_context is None
        else {"custom": client_context.custom, "env": client_context.env},
        "execution_env": os.environ.get("AWS_EXECUTION_ENV"),
    }
    return {"statusCode": 200, "body": json.dumps(body)}


def reply(event, context):
    body = event["body"]
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return json.loads(body)
