"""Keeping a process's claims alive: renewed every third of their lease while work runs."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session, sessionmaker

from catalog.store import claims


class ClaimRenewal:
    """When an owner's claims were last renewed, and renewing them once a third has passed."""

    def __init__(self) -> None:
        self.renewed_at = time.monotonic()

    def renew_if_due(self, sessions: sessionmaker[Session], owner: str, lease_s: float) -> None:
        """Renew every claim `owner` holds when a third of `lease_s` passed since the last time."""
        if time.monotonic() - self.renewed_at < lease_s / 3:
            return
        self.renewed_at = time.monotonic()
        with sessions.begin() as session:
            claims.renew_claims(session, owner=owner, lease_s=lease_s)
