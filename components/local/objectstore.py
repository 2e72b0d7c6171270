"""A region's S3-compatible endpoint: moto in server mode, inside the region.

The endpoint listens on the region's client address, so it is reachable the
way a VPC endpoint is (and can be blackholed like one), and holds the buckets
the stack config names; the standby's evidence bucket is where drill evidence
is uploaded.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import boto3

from components.local.errors import LocalEnvError
from components.wait import wait_until

PORT = 4566
# moto accepts any credentials; these name the local endpoint and are not secrets.
ACCESS = {"aws_access_key_id": "kdrill-local", "aws_secret_access_key": "kdrill-local"}


def endpoint(client_ip: str) -> str:
    return f"http://{client_ip}:{PORT}"


def argv() -> list[str]:
    moto = Path(sys.executable).with_name("moto_server")
    if not moto.exists():
        raise LocalEnvError(
            f"moto_server not found beside {sys.executable}; run tools/bootstrap.sh"
        )
    return [str(moto), "-H", "0.0.0.0", "-p", str(PORT)]


def wait_ready(url: str, deadline: float, still_alive: Callable[[], object]) -> None:
    """Wait until the endpoint answers HTTP (by `deadline`, monotonic), checking
    `still_alive()` between tries so a dead server fails fast."""

    def answers() -> bool:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            return True
        except (urllib.error.URLError, OSError):
            return False

    wait_until(
        answers,
        deadline - time.monotonic(),
        f"S3 endpoint {url}",
        interval=0.1,
        check=still_alive,
        error=lambda _: LocalEnvError(f"S3 endpoint {url} did not answer in time; see its log"),
    )


def client(url: str, aws_region: str):
    return boto3.client("s3", endpoint_url=url, region_name=aws_region, **ACCESS)


def create_buckets(url: str, aws_region: str, buckets: tuple[str, ...]) -> None:
    s3 = client(url, aws_region)
    for b in buckets:
        if aws_region == "us-east-1":
            s3.create_bucket(Bucket=b)
        else:
            s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": aws_region})


def list_buckets(url: str, aws_region: str) -> list[str]:
    return sorted(b["Name"] for b in client(url, aws_region).list_buckets()["Buckets"])
