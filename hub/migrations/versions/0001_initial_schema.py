"""initial schema

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('client',
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('secret_hash', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('agency', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('scopes', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('delivery',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('form', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id', 'recipient')
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_message_id'), ['message_id'], unique=False)

    op.create_table('inbox_item',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('agency', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('acked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('inbox_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_item_agency'), ['agency'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('delivery_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('participant_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('discloser', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('field_path', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('data_class', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('value_hmac', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('legal_basis', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('mapping_version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entry_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_recorded_at'), ['recorded_at'], unique=False)

    op.create_table('message',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('body_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('case_ref', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('participant_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site', 'sender', 'idempotency_key')
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_case_ref'), ['case_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_site'), ['site'], unique=False)

    op.create_table('participant',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state_id_hmac', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('dob_name_hmac', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site', 'state_id_hmac')
    )
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participant_dob_name_hmac'), ['dob_name_hmac'], unique=False)
        batch_op.create_index('uq_participant_dob_name_without_state_id', ['site', 'dob_name_hmac'], unique=True, sqlite_where=sa.text('state_id_hmac IS NULL'), postgresql_where=sa.text('state_id_hmac IS NULL'))



def downgrade() -> None:
    op.drop_table('participant')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_site'))
        batch_op.drop_index(batch_op.f('ix_message_participant_id'))
        batch_op.drop_index(batch_op.f('ix_message_case_ref'))

    op.drop_table('message')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_recorded_at'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_participant_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_message_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_delivery_id'))

    op.drop_table('ledger_entry')
    with op.batch_alter_table('inbox_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_item_agency'))

    op.drop_table('inbox_item')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_message_id'))

    op.drop_table('delivery')
    op.drop_table('client')
