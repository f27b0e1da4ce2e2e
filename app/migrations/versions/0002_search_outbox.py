"""Search outbox and reindex checkpoint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "search_outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("article_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_outbox")),
    )
    with op.batch_alter_table("search_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_search_outbox_article_id", ["article_id"], unique=False)
        batch_op.create_index("ix_search_outbox_next_attempt_at", ["next_attempt_at"], unique=False)

    op.create_table(
        "search_reindex",
        sa.Column("index_uid", sa.String(length=100), nullable=False),
        sa.Column("last_article_id", sa.BigInteger(), nullable=False),
        sa.Column("indexed", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("index_uid", name=op.f("pk_search_reindex")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("search_reindex")
    op.drop_table("search_outbox")
