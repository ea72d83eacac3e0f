"""media bitmap index: persisted bitmaps, their generation and the changes since

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30 14:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_bitmaps",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_media_bitmaps")),
    )
    op.create_table(
        "bitmap_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bitmap_state")),
    )
    op.create_table(
        "bitmap_changes",
        sa.Column("media_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_bitmap_changes")),
    )


def downgrade() -> None:
    op.drop_table("bitmap_changes")
    op.drop_table("bitmap_state")
    op.drop_table("media_bitmaps")
