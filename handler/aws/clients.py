"""boto3 clients for AWS itself or for an AWS-compatible server (the local emulator, moto).

With an endpoint URL (``--endpoint-url``, ``--endpoint`` or ``AWS_ENDPOINT_URL``) the client
talks to that server; such servers check no signature, so when the machine has no AWS
configuration at all a region (``us-east-1``) and placeholder credentials are filled in
rather than failing with ``NoRegionError``/``NoCredentialsError``. Without an endpoint, boto3's
own resolution applies unchanged: nothing is invented for real AWS.
"""

from __future__ import annotations

import os

DEFAULT_LOCAL_REGION = "us-east-1"
PLACEHOLDER_KEY = "local"


def session(endpoint_url: str | None = None, region: str | None = None):
    import boto3

    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    base = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    if endpoint_url is None:
        return base
    credentials = base.get_credentials()
    return boto3.session.Session(
        aws_access_key_id=None if credentials else PLACEHOLDER_KEY,
        aws_secret_access_key=None if credentials else PLACEHOLDER_KEY,
        region_name=region or base.region_name or DEFAULT_LOCAL_REGION,
    )


def client(service: str, endpoint_url: str | None = None, region: str | None = None, **kwargs):
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    return session(endpoint_url, region).client(service, endpoint_url=endpoint_url, **kwargs)
