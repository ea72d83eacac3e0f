"""One boto3 Session per run and one client per service, with retry settings.

Nothing else in the package builds a client. Region and endpoints come from the standard chain
(flags, environment, profile, `AWS_ENDPOINT_URL_<SERVICE>`); none is ever hard-coded here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    NoRegionError,
    ProfileNotFound,
)

from catalog.aws.errors import _REGION_RE, DEFAULT_MAX_ATTEMPTS, translate_error
from catalog.errors import ConfigError


class AWSClients:
    """One boto3 Session per run and one shared, thread-safe client per service."""

    def __init__(
        self,
        profile: str | None = None,
        region: str | None = None,
        max_pool_connections: int = 50,
    ) -> None:
        # AWS_REGION first, as the newer SDKs read it (botocore reads only AWS_DEFAULT_REGION).
        region = region or os.environ.get("AWS_REGION") or None
        if region is not None and not _REGION_RE.match(region):
            raise ConfigError(f"'{region}' is not an AWS region name (for example eu-west-1)")
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound as exc:
            raise ConfigError(f"the AWS profile '{profile}' is not configured ({exc})") from exc
        self._max_pool = max_pool_connections
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        """The region the chain resolved (None when nothing configured one)."""
        return self.session.region_name

    def client(self, service: str, *, retry_mode: str | None = None) -> Any:
        """The shared client for `service` (and retry mode), built on first use."""
        name = f"{service}/{retry_mode or 'default'}"
        with self._lock:
            if name not in self._clients:
                try:
                    factory: Any = self.session.client
                    self._clients[name] = factory(service, config=self._config(service, retry_mode))
                except NoRegionError as exc:
                    raise ConfigError(
                        f"no AWS region is configured for {service}; pass --region or set AWS_REGION"
                    ) from exc
                except BotoCoreError as exc:
                    raise translate_error(exc, f"creating the {service} client") from exc
            return self._clients[name]

    def _config(self, service: str, retry_mode: str | None = None) -> Config:
        retries: dict[str, Any] = {}
        # The user's own AWS_RETRY_MODE / AWS_MAX_ATTEMPTS win over our defaults, except for the
        # video-job client, whose legacy mode is what keeps a full job quota from being retried.
        if retry_mode == "legacy" or "AWS_RETRY_MODE" not in os.environ:
            retries["mode"] = retry_mode or "adaptive"
        if "AWS_MAX_ATTEMPTS" not in os.environ:
            # Legacy backoff has no cap (2^n seconds), so fewer attempts there.
            retries["total_max_attempts"] = 5 if retry_mode == "legacy" else DEFAULT_MAX_ATTEMPTS
        return Config(
            retries=retries,  # type: ignore[arg-type]
            max_pool_connections=self._max_pool,
            user_agent_extra="catalog",
            # Presigned URLs must be SigV4: newer regions and SSE-KMS objects refuse SigV2.
            signature_version="s3v4" if service == "s3" else None,
        )

    @property
    def s3(self) -> Any:
        """The S3 client."""
        return self.client("s3")

    @property
    def rekognition(self) -> Any:
        """The Rekognition client for DetectLabels.

        It uses botocore's standard retry mode: throttling is retried with capped backoff, and
        the pace is set by our own --tps limiter, which eases off on every throttling answer
        (catalog.aws.ratelimit). botocore's adaptive mode was measured to cut throughput from about
        45 to 37 images/s against a 50 requests/s quota after a handful of throttles; a user's
        AWS_RETRY_MODE still wins.
        """
        return self.client("rekognition", retry_mode="standard")

    @property
    def rekognition_jobs(self) -> Any:
        """A Rekognition client for video jobs.

        It uses botocore's legacy retry mode, which retries throttling but not
        LimitExceededException: a full job quota lasts minutes, so the sync queues the video
        itself instead of sleeping through botocore's retries.
        """
        return self.client("rekognition", retry_mode="legacy")


def s3_presigner(clients: AWSClients, expires_s: int) -> Callable[[str, str], str]:
    """A function (bucket, key) -> presigned GET URL valid for `expires_s` seconds."""
    s3 = clients.s3

    def presign(bucket: str, key: str) -> str:
        return str(
            s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
            )
        )

    return presign
