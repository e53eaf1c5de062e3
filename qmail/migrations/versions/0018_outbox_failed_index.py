"""outbox: an index of the failed rows only, for ``qmail outbox list --state failed``

Migration 0017 dropped the index on ``state`` (every notification wrote into it); the
operator's list of failed mail then read the whole outbox to find the few failed rows.
This index holds only failed rows, by id (the list is newest first): sending a mail or
queueing one writes nothing in it.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

FAILED = sa.text("state = 'failed'")


def upgrade() -> None:
    op.create_index(
        'ix_outbox_failed', 'outbox', ['id'], sqlite_where=FAILED, postgresql_where=FAILED
    )


def downgrade() -> None:
    op.drop_index('ix_outbox_failed', table_name='outbox')
