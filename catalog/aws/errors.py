"""botocore errors -> catalog errors: codes, throttling, credentials; nowhere else."""

from __future__ import annotations

import re

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
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
