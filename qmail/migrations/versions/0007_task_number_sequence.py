"""task numbers from a sequence on PostgreSQL

The ``counter`` row gave out task numbers with ``UPDATE … RETURNING``: its row lock is
held until the transaction ends, and a worker files a batch of mails per transaction, so
every other worker waited for it before opening a task.  On PostgreSQL the numbers now
come from the sequence ``task_number`` (no lock; a rolled-back transaction may leave a gap
in the numbering).  SQLite, with its one writer, keeps the counter.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != 'postgresql':
        return
    op.execute('CREATE SEQUENCE IF NOT EXISTS task_number START 1')
    last = connection.execute(
        sa.text(
            "SELECT GREATEST("
            "(SELECT COALESCE(MAX(value), 0) FROM counter WHERE name = 'task'), "
            "(SELECT COALESCE(MAX(number), 0) FROM task))"
        )
    ).scalar_one()
    # setval(n, true): the next number is n + 1; setval(1, false): the next is 1.
    connection.execute(
        sa.text('SELECT setval(\'task_number\', :value, :called)'),
        {'value': max(int(last), 1), 'called': int(last) > 0},
    )


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != 'postgresql':
        return
    connection.execute(
        sa.text(
            "UPDATE counter SET value = (SELECT COALESCE(MAX(number), 0) FROM task) "
            "WHERE name = 'task'"
        )
    )
    op.execute('DROP SEQUENCE IF EXISTS task_number')
