"""The CatalogError tree and exit codes: the only place user-facing errors live."""

from __future__ import annotations

EXIT_OK = 0
EXIT_OBJECTS_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)


class CatalogError(Exception):
    """A whole-run error with a one-line message that says what happened and what to do."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(CatalogError):
    """The command line asked for something that cannot be done (bad URI, bad option)."""


class ConfigError(CatalogError):
    """Settings that cannot work: unknown profile, unknown region, bad database URL."""


class DatabaseError(CatalogError):
    """The catalogue database cannot be opened, upgraded or written."""


class AWSError(CatalogError):
    """An AWS call failed for the whole run (credentials, missing bucket, access denied)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class CredentialsError(AWSError):
    """No AWS credentials were found, or they were rejected or expired."""


class NotFoundError(CatalogError):
    """The thing asked for (a media URI, a bucket) is not there."""


class QueryError(CatalogError):
    """A malformed search query; the message names the position and what was expected."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class ObjectError(Exception):
    """A per-object failure: recorded against the object, never ends the run.

    `code` is the Rekognition/S3 error code or our own (e.g. `UnsupportedCodec`).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SkippedObjectError(ObjectError):
    """An object that is not what was listed (a FIFO swapped in, a link now leading outside).

    Counted as skipped with `message` as the reason, never recorded as a failure.
    """


class ThrottledError(Exception):
    """A throttling error that outlived every retry; the object stays pending, not failed."""


class JobLimitError(ThrottledError):
    """Rekognition's concurrent video-job quota is full (LimitExceededException): queue and wait."""


class MalformedEventError(Exception):
    """A queue message that is not an S3 event notification; left for the redrive policy."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: the run stops as on Ctrl-C (finished work kept, run row closed), then exits 143."""


class DeliveryError(Exception):
    """An alert could not be delivered to its target; it stays queued and is retried."""


class StaleIndexError(Exception):
    """The bitmap index was rebuilt while a reader used it (the reader answers from SQL)."""
