"""search: SQLite's full-text indexes merged into one segment each

FTS5 adds each batch of new rows to its index as a new segment and merges segments
only now and then, so a store filled one mail at a time holds a dozen or more; every
lookup of a word seeks it in each of them.  A client's search looks their own messages
up in the index one by one (``qmail.queries.search``), and at a million messages a
lookup in thirteen segments cost twice what it costs in one.  ``optimize`` merges each
index into a single segment (a few seconds at a million messages); what arrives later
goes into small new segments, which FTS5 merges as usual.  PostgreSQL: nothing to do.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("INSERT INTO message_fts(message_fts) VALUES ('optimize')")
        op.execute("INSERT INTO task_fts(task_fts) VALUES ('optimize')")


def downgrade() -> None:
    pass  # a merged index is the same index
