"""taxonomy per model version

Each detection now points at the parents (in order), aliases and categories its own response
gave, stored once per (label, model version, content) in `label_taxonomies`. Nothing existing is
rewritten: label_parents, label_aliases and label_categories keep every name they hold (they go
on serving search and `catalog labels`), and detections stored before this revision keep a NULL
`taxonomy_id`, which `catalog show` answers with those tables, as it did before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 14:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_taxonomies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("parents", sa.JSON(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_id"], ["labels.id"], name=op.f("fk_label_taxonomies_label_id_labels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_taxonomies")),
        sa.UniqueConstraint(
            "label_id", "model_version", "digest", name=op.f("uq_label_taxonomies_label_id")
        ),
    )
    # A nullable column without a foreign key: SQLite adds it in place (no table rebuild).
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taxonomy_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("label_parents", schema=None) as batch_op:
        batch_op.create_index("ix_label_parents_parent_id", ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("label_parents", schema=None) as batch_op:
        batch_op.drop_index("ix_label_parents_parent_id")
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.drop_column("taxonomy_id")
    op.drop_table("label_taxonomies")
