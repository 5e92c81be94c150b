"""Deletion requests, tombstones and version redactions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:33:40.506993
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('deletion_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('requester_sha256', sa.String(length=64), nullable=True),
    sa.Column('legal_basis', sa.String(length=100), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('selector', sa.JSON(), nullable=False),
    sa.Column('selector_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('receipt', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_deletion_requests_collection_id_collections'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deletion_requests'))
    )
    with op.batch_alter_table('deletion_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deletion_requests_collection_id'), ['collection_id'], unique=False)

    op.create_table('tombstones',
    sa.Column('anchor_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('image_sha256', sa.String(length=64), nullable=False),
    sa.Column('caption_sha256', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_tombstones_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['deletion_requests.id'], name=op.f('fk_tombstones_request_id_deletion_requests'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('anchor_id', name=op.f('pk_tombstones'))
    )
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tombstones_collection_id'), ['collection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tombstones_request_id'), ['request_id'], unique=False)

    op.create_table('version_redactions',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('anchor_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['deletion_requests.id'], name=op.f('fk_version_redactions_request_id_deletion_requests'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['version_id'], ['versions.id'], name=op.f('fk_version_redactions_version_id_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', 'anchor_id', name=op.f('pk_version_redactions'))
    )
    with op.batch_alter_table('version_redactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_version_redactions_request_id'), ['request_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('version_redactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_version_redactions_request_id'))

    op.drop_table('version_redactions')
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tombstones_request_id'))
        batch_op.drop_index(batch_op.f('ix_tombstones_collection_id'))

    op.drop_table('tombstones')
    with op.batch_alter_table('deletion_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deletion_requests_collection_id'))

    op.drop_table('deletion_requests')
