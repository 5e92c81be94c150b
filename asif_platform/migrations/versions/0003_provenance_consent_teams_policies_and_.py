"""Provenance, consent, teams, policies and the audit log.

Existing anchors get consent "unknown" and no license; existing collections no team
(open to every principal) and an empty policy.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 16:19:06.933871
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('principal', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('previous_sha256', sa.String(length=64), nullable=False),
    sa.Column('entry_sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries')),
    sa.UniqueConstraint('entry_sha256', name=op.f('uq_audit_entries_entry_sha256'))
    )
    op.create_table('teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teams')),
    sa.UniqueConstraint('name', name=op.f('uq_teams_name'))
    )
    op.create_table('memberships',
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('principal', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_memberships_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'principal', name=op.f('pk_memberships'))
    )
    with op.batch_alter_table('anchors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ingested_by', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('source_version', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('source_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('license', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('creator', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('attribution', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('consent_status', sa.String(length=16), nullable=False, server_default='unknown'))
        batch_op.add_column(sa.Column('consent_basis', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('consent_recorded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('consent_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('consent_evidence', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_anchors_consent_status'), ['consent_status'], unique=False)

    with op.batch_alter_table('collections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('team_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_collections_team_id'), ['team_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_collections_team_id_teams'), 'teams', ['team_id'], ['id'], ondelete='RESTRICT')



def downgrade() -> None:
    with op.batch_alter_table('collections', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_collections_team_id_teams'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_collections_team_id'))
        batch_op.drop_column('team_id')
        batch_op.drop_column('policy')

    with op.batch_alter_table('anchors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anchors_consent_status'))
        batch_op.drop_column('consent_evidence')
        batch_op.drop_column('consent_expires_at')
        batch_op.drop_column('consent_recorded_at')
        batch_op.drop_column('consent_basis')
        batch_op.drop_column('consent_status')
        batch_op.drop_column('attribution')
        batch_op.drop_column('creator')
        batch_op.drop_column('license')
        batch_op.drop_column('source_url')
        batch_op.drop_column('source_version')
        batch_op.drop_column('ingested_by')

    op.drop_table('memberships')
    op.drop_table('teams')
    op.drop_table('audit_entries')
