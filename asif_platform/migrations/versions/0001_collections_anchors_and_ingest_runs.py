"""Collections, anchors and ingest runs.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 15:19:07.977453
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('image_encoder', sa.JSON(), nullable=False),
    sa.Column('text_encoder', sa.JSON(), nullable=False),
    sa.Column('image_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('text_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('image_dim', sa.Integer(), nullable=False),
    sa.Column('text_dim', sa.Integer(), nullable=False),
    sa.Column('default_k', sa.Integer(), nullable=False),
    sa.Column('default_p', sa.Float(), nullable=False),
    sa.Column('templates', sa.JSON(), nullable=False),
    sa.Column('template_aggregation', sa.String(length=16), nullable=False),
    sa.Column('exact_search', sa.Boolean(), nullable=False),
    sa.Column('hnsw_ef', sa.Integer(), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections')),
    sa.UniqueConstraint('name', name=op.f('uq_collections_name'))
    )
    op.create_table('ingest_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_dataset', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('image_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('text_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('platform_version', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_ingest_runs_collection_id_collections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_runs'))
    )
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_runs_collection_id'), ['collection_id'], unique=False)

    op.create_table('anchors',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('caption', sa.Text(), nullable=False),
    sa.Column('caption_sha256', sa.String(length=64), nullable=False),
    sa.Column('image_ref', sa.Text(), nullable=False),
    sa.Column('image_sha256', sa.String(length=64), nullable=False),
    sa.Column('source_dataset', sa.String(length=200), nullable=False),
    sa.Column('source_record_id', sa.Text(), nullable=False),
    sa.Column('ingest_run_id', sa.Integer(), nullable=True),
    sa.Column('image_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('text_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_anchors_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ingest_run_id'], ['ingest_runs.id'], name=op.f('fk_anchors_ingest_run_id_ingest_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_anchors'))
    )
    with op.batch_alter_table('anchors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anchors_collection_id'), ['collection_id'], unique=False)
        batch_op.create_index('ix_anchors_collection_image', ['collection_id', 'image_sha256'], unique=False)
        batch_op.create_index('ix_anchors_collection_source', ['collection_id', 'source_record_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('anchors', schema=None) as batch_op:
        batch_op.drop_index('ix_anchors_collection_source')
        batch_op.drop_index('ix_anchors_collection_image')
        batch_op.drop_index(batch_op.f('ix_anchors_collection_id'))

    op.drop_table('anchors')
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_runs_collection_id'))

    op.drop_table('ingest_runs')
    op.drop_table('collections')
