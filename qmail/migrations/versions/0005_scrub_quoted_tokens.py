"""replace our tokens quoted in stored mail by placeholders

Replies that quoted a whole notification were stored with the recipient's reply
addresses, sign-in link and unsubscribe link in them, where other participants could
read (and use) them.  New mail is scrubbed before it is stored (``qmail.core.secrets``);
this cleans what is already there: message texts and subjects, task titles, names,
event details, quarantine reasons, attachment names and textual attachments.

A data migration that uses the scrubber of the code base, on purpose: tokens are
recognised by their shape, and the shape is the code's.  Rows are read in batches of
ids, so a large database is cleaned in bounded memory.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from qmail.core.secrets import is_textual, scrub_content, scrub_secrets


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BATCH = 500
TEXT_COLUMNS = {
    'message': ('text', 'quoted', 'full_text', 'subject'),
    'task': ('title',),
    'person': ('name',),
    'event': ('detail',),
    'quarantine': ('reason',),
    'attachment': ('filename',),
}


def upgrade() -> None:
    connection = op.get_bind()
    for table, columns in TEXT_COLUMNS.items():
        _scrub_table(connection, sa.table(table, sa.column('id'), *map(sa.column, columns)))
    attachment = sa.table(
        'attachment',
        sa.column('id'),
        sa.column('filename'),
        sa.column('content_type'),
        sa.column('content', sa.LargeBinary),
    )
    for ids in _batches(connection, attachment):
        for row in connection.execute(
            sa.select(attachment.c.id, attachment.c.filename, attachment.c.content_type)
            .where(attachment.c.id.in_(ids))
        ):
            if not is_textual(row.content_type or '', row.filename or ''):
                continue
            content = connection.execute(
                sa.select(attachment.c.content).where(attachment.c.id == row.id)
            ).scalar_one()
            clean = scrub_content(row.content_type, content, row.filename)
            if clean is not content:
                connection.execute(
                    attachment.update().where(attachment.c.id == row.id).values(content=clean)
                )


def downgrade() -> None:
    """Nothing to undo: the tokens are gone, as they should be."""


def _scrub_table(connection: sa.Connection, table: sa.TableClause) -> None:
    columns = [column for column in table.c if column.name != 'id']
    for ids in _batches(connection, table):
        rows = connection.execute(sa.select(table.c.id, *columns).where(table.c.id.in_(ids)))
        for row in rows.all():
            changed = {}
            for column in columns:
                value = getattr(row, column.name)
                if isinstance(value, str):
                    clean = scrub_secrets(value)
                    if clean is not value:
                        changed[column.name] = clean
            if changed:
                connection.execute(table.update().where(table.c.id == row.id).values(**changed))


def _batches(connection: sa.Connection, table: sa.TableClause):  # type: ignore[no-untyped-def]
    """The table's ids in ascending batches of ``BATCH``."""
    last = None
    while True:
        query = sa.select(table.c.id).order_by(table.c.id).limit(BATCH)
        if last is not None:
            query = query.where(table.c.id > last)
        ids = list(connection.execute(query).scalars())
        if not ids:
            return
        yield ids
        last = ids[-1]
