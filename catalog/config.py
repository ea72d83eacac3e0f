"""Settings: resolved once from command-line flags and the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DATABASE_ENV = "CATALOG_DATABASE_URL"
DEFAULT_DB_FILE = "catalog.db"


def default_database_url() -> str:
    """The embedded default: a SQLite file `catalog.db` in the working directory."""
    return f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


_URL_PASSWORD_RE = re.compile(r"(?P<head>://[^/@?#\s:]*:)[^@/?#\s]*(?=@)")
_QUERY_SECRET_RE = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|sslpassword|secret|token)=)[^&;#\s]*", re.I
)


def redact_url(text: str) -> str:
    """`text` with any password in a URL (user:PASSWORD@ or ?password=...) shown as ***.

    The one redactor: every message that prints a database URL goes through it.
    """
    text = _URL_PASSWORD_RE.sub(r"\g<head>***", text)
    return _QUERY_SECRET_RE.sub(r"\g<head>***", text)


# AWS secrets as they appear in botocore's wire logging and in signed URLs.
_AWS_SECRET_RE = re.compile(
    r"(?P<head>(?:x-amz-security-token|x-amz-signature|authorization|aws_secret_access_key|"
    r"aws_session_token|signature|credential)['\"]?\s*[:=]\s*['\"]?(?:b['\"])?)"
    r"[^'\"&,\s}]+(?:[ ,]+(?:SignedHeaders|Signature|Credential)=[^'\"&,\s}]+)*",
    re.I,
)


def redact_secrets(text: str) -> str:
    """`text` with URL passwords and AWS tokens, signatures and credentials shown as ***."""
    return _AWS_SECRET_RE.sub(r"\g<head>***", redact_url(text))


def normalise_database_url(value: str | None) -> str:
    """Accept a SQLAlchemy URL, or a plain file path meaning a SQLite file."""
    if not value:
        return default_database_url()
    if "://" in value:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # psycopg 3 is the driver we ship; SQLAlchemy's bare postgresql:// means psycopg2.
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def describe_database_url(url: str) -> str:
    """The catalogue as users should see it: a SQLite file's path, or the URL without password."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://…"


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know about where things are."""

    database_url: str
    profile: str | None = None
    region: str | None = None
    verbose: bool = False

    @classmethod
    def resolve(
        cls,
        db: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        verbose: bool = False,
    ) -> Settings:
        """Build settings from flags, falling back to the environment and defaults."""
        return cls(
            database_url=normalise_database_url(db or os.environ.get(DATABASE_ENV)),
            profile=profile or None,
            region=region or None,
            verbose=verbose,
        )
