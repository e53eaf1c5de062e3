"""outbox: a notification's stencil kept once, and only the indexes its readers use

- ``outboxstencil``: a notification as composed once for its readers (the header block
  and both bodies with placeholders, and the files it carries, encoded).  A notification's
  ``outbox`` row names it (``stencil_id``) and keeps only its recipient's own values
  (``personal``, JSON); its ``raw`` and ``text`` stay empty and the mail is filled in when
  it is sent.  The files are kept once a message: the second stencil of a message (the
  team's, or everybody else's) names the first one's (``files_from``).  Rows already
  queued keep their ``raw`` and ``text`` and are sent as they are.
- ``outbox`` keeps the indexes a query reads by: ``message_id`` (unique: replies name it),
  ``recipient, created_at`` (the rate limits on acknowledgements and sign-in links, which
  read a recipient's last day only: a team member is sent thousands), ``task_id,
  person_id`` (the thread a notification continues: ``notifications._EARLIER_IDS``) and
  ``ix_outbox_due``, the due time of pending rows only (delivery's claim).  The indexes on
  ``task_id``, ``person_id``, ``recipient``, ``state``, ``next_attempt_at`` and
  ``created_at`` alone go: every notification wrote into each (``bench/outbox_plans.py``
  prints every reader's plan).

Plain ALTER TABLE and CREATE/DROP INDEX on both databases (no batch copy of the outbox).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

DROPPED = ('task_id', 'person_id', 'recipient', 'state', 'next_attempt_at', 'created_at')
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_table(
        'outboxstencil',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('head', sa.LargeBinary(), nullable=False),
        sa.Column('boundary', sqlmodel.sql.sqltypes.AutoString(length=70), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('html', sa.Text(), nullable=False),
        sa.Column('files', sa.LargeBinary(), nullable=False),
        sa.Column('mixed', sqlmodel.sql.sqltypes.AutoString(length=70), nullable=False),
        sa.Column('files_from', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.add_column('outbox', sa.Column('stencil_id', sa.Integer(), nullable=True))
    op.add_column('outbox', sa.Column('personal', sa.Text(), nullable=True))
    for column in DROPPED:
        op.drop_index(f'ix_outbox_{column}', table_name='outbox')
    op.create_index('ix_outbox_recipient_created', 'outbox', ['recipient', 'created_at'])
    op.create_index('ix_outbox_task_person', 'outbox', ['task_id', 'person_id'])
    op.create_index(
        'ix_outbox_due',
        'outbox',
        ['next_attempt_at'],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.drop_index('ix_outbox_task_person', table_name='outbox')
    op.drop_index('ix_outbox_recipient_created', table_name='outbox')
    for column in DROPPED:
        op.create_index(f'ix_outbox_{column}', 'outbox', [column])
    op.drop_column('outbox', 'personal')
    op.drop_column('outbox', 'stencil_id')
    op.drop_table('outboxstencil')
