"""consent registry

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('participant_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('case_ref', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('occurred_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id', 'event')
    )
    with op.batch_alter_table('case_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_event_participant_id'), ['participant_id'], unique=False)

    op.create_table('consent_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consent_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('participant_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('terms', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('resource', sa.LargeBinary(), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('revoked_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('revocation_method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('consent_id', 'version')
    )
    with op.batch_alter_table('consent_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_version_consent_id'), ['consent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_version_participant_id'), ['participant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('consent_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_version_participant_id'))
        batch_op.drop_index(batch_op.f('ix_consent_version_consent_id'))

    op.drop_table('consent_version')
    with op.batch_alter_table('case_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_event_participant_id'))

    op.drop_table('case_event')
