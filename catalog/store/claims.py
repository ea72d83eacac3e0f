"""Work claims: which process labels which object, under leases that expire when it dies.

Several `catalog sync` processes, queue workers and Lambda invocations may share one catalogue.
Before labelling an object a process claims its media row: a new object's row is inserted as
pending with the claim (the unique (source, bucket, key) constraint lets exactly one insert win);
an existing row is taken with a conditional UPDATE that succeeds only when the row is unclaimed
or its lease has expired, and only while the row is still in the state the caller diffed (its
`status` and `attempts` unchanged: every stored result or failure bumps `attempts`), so an object
someone else finished meanwhile is not labelled again. On PostgreSQL the row is first locked with
`SELECT ... FOR UPDATE SKIP LOCKED`, so claimers never queue behind each other. Storing a result or
a failure releases the claim; a process that dies leaves a lease that simply runs out.

Lease times are the claimers' own clocks (UTC); keep the machines' clocks in sync (NTP).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.sources import SourceObject
from catalog.store.media import insert_pending
from catalog.store.reads import StoredMedia
from catalog.store.schema import STATUS_PENDING, Media, utcnow

DEFAULT_LEASE_S = 300.0


def make_owner() -> str:
    """A claim owner id unique to this process: host, pid and a random suffix."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _host() -> str:
    return socket.gethostname()[:80]


def is_dead_local_owner(owner: str) -> bool:
    """True when `owner` is a process on this machine that no longer runs (killed, crashed).

    A zombie (killed, not yet reaped by its parent) counts as gone. Its leases need not run
    out: a re-run or another worker on the same machine takes its objects at once.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """True when /proc says `pid` has exited but is not reaped yet (False where /proc is absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[:1]  # the command name may hold spaces and ')'
    return state in (["Z"], ["X"])


def _takeable(session: Session, media_id: int, owner: str) -> object:
    """The condition under which `owner` may take the row: free, its own, or a dead holder's."""
    holder = session.execute(
        select(Media.claimed_by).where(Media.id == media_id)
    ).scalar_one_or_none()
    takeable: list[object] = [Media.claimed_by == owner, _is_free()]
    if holder and is_dead_local_owner(holder):
        takeable.append(Media.claimed_by == holder)
    return or_(*takeable)  # type: ignore[arg-type]


def _is_free() -> object:
    return or_(Media.claimed_by.is_(None), Media.claim_expires_at < utcnow())


def claim_object(
    sessions: sessionmaker[Session],
    obj: SourceObject,
    kind: str,
    stored: StoredMedia | None,
    *,
    owner: str,
    lease_s: float = DEFAULT_LEASE_S,
) -> bool:
    """Claim one object for labelling; False when another live process has it or finished it.

    `stored` is the row as the caller saw it when deciding to label (None: no row then).
    Commits its own short transaction.
    """
    expires = utcnow() + timedelta(seconds=lease_s)
    if stored is None:
        try:
            with sessions.begin() as session:
                insert_pending(session, obj, kind, claimed_by=owner, claim_expires_at=expires)
        except IntegrityError:
            return False  # another process inserted (and so claimed) it first
        return True
    with sessions.begin() as session:
        unchanged = and_(
            Media.id == stored.id,
            Media.status == stored.status,
            Media.attempts == stored.attempts,
            _takeable(session, stored.id, owner),  # type: ignore[arg-type]
        )
        return _claim_row(session, unchanged, owner, expires)


def _claim_row(session: Session, condition: Any, owner: str, expires: datetime) -> bool:
    """Claim the one media row `condition` selects, if it still does; False when it does not.

    PostgreSQL first locks the row, skipping it when another claimer holds it locked right now;
    SQLite serialises writers, so the conditional UPDATE is atomic on its own.
    """
    if session.get_bind().dialect.name == "postgresql":
        locked = session.execute(
            select(Media.id).where(condition).with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if locked is None:
            return False
    result = session.execute(
        update(Media)
        .where(condition)
        .values(claimed_by=owner, claim_expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def claim_pending(
    session: Session, *, owner: str, limit: int, lease_s: float = DEFAULT_LEASE_S
) -> list[int]:
    """Claim up to `limit` unclaimed pending media rows (oldest first); returns their ids.

    PostgreSQL skips rows other claimers hold locked right now (`FOR UPDATE SKIP LOCKED`);
    SQLite serialises writers, so its conditional UPDATE is atomic on its own.
    """
    expires = utcnow() + timedelta(seconds=lease_s)
    query = (
        select(Media.id)
        .where(Media.status == STATUS_PENDING, _is_free())  # type: ignore[arg-type]
        .order_by(Media.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.execute(query).scalars())
    claimed: list[int] = []
    for media_id in ids:
        result = session.execute(
            update(Media)
            .where(Media.id == media_id, _is_free())  # type: ignore[arg-type]
            .values(claimed_by=owner, claim_expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            claimed.append(media_id)
    return claimed


def claim_pending_video(
    session: Session,
    media_id: int,
    *,
    owner: str,
    lease_s: float = DEFAULT_LEASE_S,
    pending_only: bool = True,
) -> bool:
    """Claim one pending video (to start, poll or collect its job); False when another has it.

    The caller commits. A holder that is a dead process on this machine does not block it.
    `pending_only=False` also claims a labelled video (whose text job alone runs).
    """
    condition = and_(
        Media.id == media_id,
        Media.status == STATUS_PENDING if pending_only else Media.id == media_id,
        _takeable(session, media_id, owner),  # type: ignore[arg-type]
    )
    return _claim_row(session, condition, owner, utcnow() + timedelta(seconds=lease_s))


def claim_stored_jobs(
    session: Session,
    *,
    owner: str,
    limit: int,
    lease_s: float = DEFAULT_LEASE_S,
    buckets: Sequence[str] = (),
) -> list[int]:
    """Claim up to `limit` pending videos whose job is stored and nobody live polls (oldest first).

    What a worker adopts on start and while it runs: the jobs of processes that stopped or
    died. `buckets` narrows the search (empty: every bucket). The caller commits.
    """
    if limit <= 0:
        return []
    local = Media.claimed_by.like(f"{_host()}:%") & (Media.claimed_by != owner)
    query = (
        select(Media.id)
        .where(
            Media.status == STATUS_PENDING,
            Media.job_id.is_not(None),
            or_(_is_free(), local),  # type: ignore[arg-type]
        )
        .order_by(Media.id)
        .limit(limit * 4)
    )
    if buckets:
        query = query.where(Media.bucket.in_(list(buckets)))
    claimed: list[int] = []
    for media_id in session.execute(query).scalars().all():
        if len(claimed) >= limit:
            break
        if claim_pending_video(session, media_id, owner=owner, lease_s=lease_s):
            claimed.append(media_id)
    return claimed


def release_claim(session: Session, media_id: int, *, owner: str) -> None:
    """Drop `owner`'s claim on one row (work handed back, e.g. a started job left to SNS)."""
    session.execute(
        update(Media)
        .where(Media.id == media_id, Media.claimed_by == owner)
        .values(claimed_by=None, claim_expires_at=None)
        .execution_options(synchronize_session=False)
    )


def renew_claims(session: Session, *, owner: str, lease_s: float = DEFAULT_LEASE_S) -> int:
    """Push back the expiry of every claim `owner` holds (a heartbeat for long work)."""
    result = session.execute(
        update(Media)
        .where(Media.claimed_by == owner)
        .values(claim_expires_at=utcnow() + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def release_claims(session: Session, *, owner: str) -> int:
    """Drop every claim `owner` still holds (work it will not finish), so others may take it."""
    result = session.execute(
        update(Media)
        .where(Media.claimed_by == owner)
        .values(claimed_by=None, claim_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def is_claimed_by_other(session: Session, media_id: int, owner: str) -> bool:
    """True when a live lease of another process holds the row."""
    row = session.execute(
        select(Media.claimed_by, Media.claim_expires_at).where(Media.id == media_id)
    ).one_or_none()
    if row is None or row.claimed_by is None or row.claimed_by == owner:
        return False
    if is_dead_local_owner(row.claimed_by):
        return False
    return row.claim_expires_at is not None and row.claim_expires_at > utcnow()
