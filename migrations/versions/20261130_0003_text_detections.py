"""text detections with a full-text index

Revision ID: 0003
Revises: 0004
Create Date: 2026-11-30 14:30:00.000000

Text in images and videos (DetectText, text jobs, offline OCR): `text_results` (provenance),
`text_detections` (LINE and WORD rows), the video's `media.text_job_id` and what a run paid for
text on `sync_runs`. The full-text index covers LINE rows' folded words: on SQLite an FTS5 table
with one row per media item (`text_fts`); on PostgreSQL a partial GIN index on
`to_tsvector('simple', text_folded)` of each LINE row. Neither is an ORM object: migrations/env.py leaves them
out of `alembic check`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One row per media item (rowid = media id): its distinct LINEs' folded words, a line-break
# token between lines. Written by the product's write path (catalog.store.text), not triggers.
_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE text_fts USING fts5(body, tokenize='unicode61 remove_diacritics 2')",
]
_POSTGRES_FTS = [
    "CREATE INDEX ix_text_detections_fts ON text_detections "
    "USING gin (to_tsvector('simple'::regconfig, text_folded)) WHERE kind = 'LINE'",
]


def upgrade() -> None:
    op.create_table(
        "text_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("reader", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("sync_run_id", sa.Integer(), nullable=True),
        sa.Column("reused_from_media_id", sa.Integer(), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_text_results_media_id_media"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sync_run_id"],
            ["sync_runs.id"],
            name=op.f("fk_text_results_sync_run_id_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_results")),
    )
    with op.batch_alter_table("text_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_text_results_media_id"), ["media_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_text_results_sync_run_id"), ["sync_run_id"], unique=False
        )

    op.create_table(
        "text_detections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("parent_idx", sa.Integer(), nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_folded", sa.Text(), nullable=False),
        sa.Column("confidence_x100", sa.Integer(), nullable=False),
        sa.Column("left", sa.Float(), nullable=False),
        sa.Column("top", sa.Float(), nullable=False),
        sa.Column("width", sa.Float(), nullable=False),
        sa.Column("height", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_text_detections_media_id_media"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_detections")),
    )
    with op.batch_alter_table("text_detections", schema=None) as batch_op:
        batch_op.create_index("ix_text_detections_media_id", ["media_id", "kind"], unique=False)

    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_job_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("billed_text_images", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("billed_text_video_ms", sa.BigInteger(), server_default="0", nullable=False)
        )

    statements = _SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS text_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_text_detections_fts")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("billed_text_video_ms")
        batch_op.drop_column("billed_text_images")
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_column("text_job_id")
    with op.batch_alter_table("text_detections", schema=None) as batch_op:
        batch_op.drop_index("ix_text_detections_media_id")
    op.drop_table("text_detections")
    with op.batch_alter_table("text_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_text_results_sync_run_id"))
        batch_op.drop_index(batch_op.f("ix_text_results_media_id"))
    op.drop_table("text_results")
