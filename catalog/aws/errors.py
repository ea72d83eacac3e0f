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

from catalog.errors import AWSError, ConfigError, CredentialsError, NotFoundError, ObjectError

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


MAX_MESSAGE_CHARS = 300
_MARKUP_RE = re.compile(r"<\s*(!doctype|html|head|body|\?xml|title|h1)\b", re.IGNORECASE)


def error_message(exc: BaseException) -> str:
    """A short, one-line message for a botocore error.

    A service's own message is kept (first line, at most MAX_MESSAGE_CHARS); a body that is a
    web page (a proxy's or load balancer's HTML error) becomes the HTTP status and error code.
    """
    if not isinstance(exc, ClientError):
        return _one_line(str(exc) or type(exc).__name__)
    error = exc.response.get("Error", {})
    message = str(error.get("Message") or "")
    if message and not _MARKUP_RE.search(message):
        return _one_line(message)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code") or "")
    if status is None:
        return code or _one_line(str(exc))
    return f"HTTP {status}" + (f" ({code})" if code and code != str(status) else "")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > MAX_MESSAGE_CHARS:
        line = line[: MAX_MESSAGE_CHARS - 1] + "…"
    return line


def object_error(
    exc: BaseException, what: str, *, default_code: str, fatal_codes: frozenset[str] = frozenset()
) -> ObjectError | AWSError | ConfigError | NotFoundError:
    """The error a failed call about one object raises: a per-object ObjectError, or a whole-run
    CatalogError when the credentials are wrong or the code is in `fatal_codes`."""
    code = error_code(exc)
    if is_credentials_error(exc) or code in fatal_codes:
        return translate_error(exc, what)
    if isinstance(exc, ClientError):
        return ObjectError(code or default_code, error_message(exc))
    return ObjectError(type(exc).__name__, error_message(exc))


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
