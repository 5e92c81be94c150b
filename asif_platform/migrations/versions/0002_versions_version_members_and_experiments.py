"""versions, version members and experiments

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 16:04:58.194416
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('selector', sa.JSON(), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('anchors', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_versions_collection_id_collections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_versions')),
    sa.UniqueConstraint('collection_id', 'name', name=op.f('uq_versions_collection_id'))
    )
    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_versions_collection_id'), ['collection_id'], unique=False)

    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('image_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('text_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('templates', sa.JSON(), nullable=False),
    sa.Column('template_aggregation', sa.String(length=16), nullable=False),
    sa.Column('eval_set', sa.Text(), nullable=False),
    sa.Column('eval_set_sha256', sa.String(length=64), nullable=False),
    sa.Column('images', sa.Integer(), nullable=False),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('p', sa.Float(), nullable=False),
    sa.Column('top1', sa.Float(), nullable=False),
    sa.Column('top5', sa.Float(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_experiments_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['versions.id'], name=op.f('fk_experiments_version_id_versions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments'))
    )
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiments_collection_id'), ['collection_id'], unique=False)

    op.create_table('version_members',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('anchor_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['anchor_id'], ['anchors.id'], name=op.f('fk_version_members_anchor_id_anchors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['versions.id'], name=op.f('fk_version_members_version_id_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', 'anchor_id', name=op.f('pk_version_members'))
    )
    with op.batch_alter_table('version_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_version_members_anchor_id'), ['anchor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('version_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_version_members_anchor_id'))

    op.drop_table('version_members')
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiments_collection_id'))

    op.drop_table('experiments')
    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_versions_collection_id'))

    op.drop_table('versions')
