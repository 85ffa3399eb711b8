"""ledger rows name the kind of legal basis (consent, court order, LEAD agreement, none)

Existing rows are back-filled from what they already record: a reference to a court order
on file is a court order, any other Consent reference a consent, the LEAD agreement's text
the agreement, and "none ..." none. Their chain links keep covering what they covered
(content version 1); links from here on cover the kind too (version 2), from the seq
recorded in ledger_content_epoch.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BACKFILL = """
UPDATE ledger_entry SET basis_kind = CASE
  WHEN legal_basis LIKE 'Consent/%' AND EXISTS (
         SELECT 1 FROM consent_version c
         WHERE c.kind = 'court-order'
           AND legal_basis LIKE 'Consent/' || c.consent_id || '/%') THEN 'court-order'
  WHEN legal_basis LIKE 'Consent/%' THEN 'consent'
  WHEN legal_basis LIKE 'LEAD interagency agreement%' THEN 'lead-agreement'
  ELSE 'none' END
WHERE decision IN ('disclosed', 'withheld')
"""


def upgrade() -> None:
    op.add_column('ledger_entry', sa.Column(
        'basis_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.create_table('ledger_content_epoch',
    sa.Column('from_seq', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('from_seq')
    )
    op.execute("INSERT INTO ledger_content_epoch (from_seq, version) "
               "SELECT seq + 1, 2 FROM ledger_head WHERE id = 1")
    # The one sanctioned change to existing ledger rows: a new column, filled in by the
    # schema's owner, outside the chain's links (see the module docstring).
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE ledger_entry DISABLE TRIGGER ledger_no_update")
        op.execute(BACKFILL)
        op.execute("ALTER TABLE ledger_entry ENABLE TRIGGER ledger_no_update")
    else:
        op.execute("DROP TRIGGER ledger_no_update")
        op.execute(BACKFILL)
        op.execute("""CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entry
       BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: UPDATE refused'); END""")


def downgrade() -> None:
    op.drop_table('ledger_content_epoch')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_column('basis_kind')
