"""ledger chain, checkpoints, append-only enforcement

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

GUARD_PG = """
CREATE FUNCTION ledger_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM ledger_purge_permit) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'ledger_entry is append-only: % refused', TG_OP;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entry
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_entry
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
"""
GUARD_SQLITE = [
    """CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entry
       BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_entry
       WHEN NOT EXISTS (SELECT 1 FROM ledger_purge_permit)
       BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: DELETE refused'); END""",
]


def upgrade() -> None:
    op.create_table('ledger_checkpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('upto_seq', sa.Integer(), nullable=False),
    sa.Column('head_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('public_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('ledger_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('entry_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('ledger_purge_permit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute("INSERT INTO ledger_head (id, seq, entry_hash) VALUES (1, 0, '"
               + "0" * 64 + "')")
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('entry_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('notice', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index('uq_ledger_entry_seq', ['seq'], unique=True)
        batch_op.create_index('ix_ledger_entry_participant_time',
                              ['participant_id', 'recorded_at'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(GUARD_PG)
    else:
        for statement in GUARD_SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER ledger_no_update ON ledger_entry")
        op.execute("DROP TRIGGER ledger_no_delete ON ledger_entry")
        op.execute("DROP FUNCTION ledger_append_only()")
    else:
        op.execute("DROP TRIGGER ledger_no_update")
        op.execute("DROP TRIGGER ledger_no_delete")
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entry_participant_time')
        batch_op.drop_index('uq_ledger_entry_seq')
        batch_op.drop_column('notice')
        batch_op.drop_column('entry_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
    op.drop_table('ledger_purge_permit')
    op.drop_table('ledger_head')
    op.drop_table('ledger_checkpoint')
