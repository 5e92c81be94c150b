"""Record each collection's HNSW graph and quantization in the catalog.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 00:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing collections keep NULL: what Qdrant was given was not recorded.
    with op.batch_alter_table('collections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hnsw_m', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('hnsw_ef_construct', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('quantization', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('collections', schema=None) as batch_op:
        batch_op.drop_column('quantization')
        batch_op.drop_column('hnsw_ef_construct')
        batch_op.drop_column('hnsw_m')
