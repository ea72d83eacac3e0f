"""boto3 session and clients, retry settings, and ClientError -> CatalogError translation.

Nothing else in the package builds a client. Region and endpoints come from the standard chain
(flags, environment, profile, `AWS_ENDPOINT_URL_<SERVICE>`); none is ever hard-coded here.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from catalog.errors import AWSError, ConfigError, CredentialsError, NotFoundError

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "RequestLimitExceeded",
    }
)
# Errors that say the credentials or permissions are wrong for every object, not one.
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "AuthFailure",
        "MissingAuthenticationToken",
        "IncompleteSignature",
    }
)
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
DEFAULT_MAX_ATTEMPTS = 10


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "") or "")
    return ""


def error_message(exc: BaseException) -> str:
    """The AWS error message of a ClientError, or the exception's text."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message") or ""
        return str(message) or str(exc)
    return str(exc)


def is_throttling(exc: BaseException) -> bool:
    """True for errors that mean 'slow down and try again'."""
    return error_code(exc) in THROTTLING_CODES


def is_credentials_error(exc: BaseException) -> bool:
    """True for errors that mean the credentials are missing, wrong or expired."""
    return isinstance(exc, NoCredentialsError | PartialCredentialsError) or (
        error_code(exc) in CREDENTIAL_CODES
    )


def translate_error(exc: BaseException, what: str) -> AWSError | ConfigError | NotFoundError:
    """Turn a botocore error that ends the whole run into a one-line CatalogError."""
    code = error_code(exc)
    if is_credentials_error(exc):
        detail = error_message(exc) if code else "no AWS credentials were found"
        return CredentialsError(
            f"AWS rejected the credentials while {what}: {detail}. Check your profile, "
            "environment or SSO session (aws sso login / aws configure)",
            code or "NoCredentials",
        )
    if isinstance(exc, NoRegionError):
        return ConfigError("no AWS region is configured; pass --region or set AWS_REGION")
    if isinstance(exc, EndpointConnectionError):
        return AWSError(
            f"cannot reach AWS while {what} ({exc}); check --region and the network", "Endpoint"
        )
    if code in ("NoSuchBucket", "404", "NotFound"):
        return NotFoundError(f"no such bucket while {what}: {error_message(exc)}")
    if code in ("AccessDenied", "403", "AccessDeniedException", "AllAccessDisabled"):
        return AWSError(
            f"access denied while {what}: {error_message(exc)}; check the IAM policy "
            "(catalog iam-policy prints the one this tool needs)",
            code,
        )
    if code in (
        "PermanentRedirect",
        "301",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
    ):
        return AWSError(
            f"the bucket is in another region while {what}; pass --region with the bucket's region",
            code,
        )
    if isinstance(exc, ClientError):
        return AWSError(f"AWS error while {what}: {code}: {error_message(exc)}", code)
    return AWSError(f"AWS error while {what}: {exc}", type(exc).__name__)


class AWSClients:
    """One boto3 Session per run and one shared, thread-safe client per service."""

    def __init__(
        self,
        profile: str | None = None,
        region: str | None = None,
        max_pool_connections: int = 50,
    ) -> None:
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
        (catalog.ratelimit). botocore's adaptive mode was measured to cut throughput from about
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
