"""indexes for every page query, full-text search, and each person's domain

- Lists read newest first and page on from the last row shown: ``task(updated_at, id)``
  (with ``status`` in front for the status filter), ``event(created_at, id)`` and
  ``event(task_id, created_at, id)`` replace the one-column indexes they extend;
  ``event(branch_id, kind)`` finds a task's team branch; ``branchmember(person_id,
  branch_id)`` and ``message(branch_id, sent_at, id)`` answer "my branches" and "a
  branch's messages in order" from the index alone.
- ``person.domain`` is computed by the database from ``email`` (a generated column), so
  the team (``mail.team_domains``) and the address book's companies come from an index
  instead of a ``LIKE '%@domain'`` over everyone.
- Full-text search over message texts and task titles: on SQLite, FTS5 tables over
  ``message.text`` and ``task.title`` (external content, kept in step by triggers); on
  PostgreSQL, generated ``tsvector`` columns with GIN indexes.  Both are filled from the
  existing rows here.  These objects are not in ``qmail/models.py``: ``qmail.db``
  names them (``SEARCH_OBJECTS``) so that comparing the schema with the models skips them.

A later migration that rebuilds ``message`` or ``task`` on SQLite (a batch operation
copies the table) drops the triggers with the old table: it must create them again and
rebuild the index (``INSERT INTO message_fts(message_fts) VALUES ('rebuild')``).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# (table, old one-column index, new index, its columns)
REPLACED = [
    ('task', 'ix_task_updated_at', 'ix_task_updated', ['updated_at', 'id']),
    ('task', 'ix_task_status', 'ix_task_status_updated', ['status', 'updated_at', 'id']),
    ('event', 'ix_event_created_at', 'ix_event_created', ['created_at', 'id']),
    ('event', 'ix_event_task_id', 'ix_event_task_created', ['task_id', 'created_at', 'id']),
    ('branchmember', 'ix_branchmember_person_id', 'ix_branchmember_person_branch',
     ['person_id', 'branch_id']),
    ('message', 'ix_message_branch_id', 'ix_message_branch_sent', ['branch_id', 'sent_at', 'id']),
]

# The domain of an address (after its last @), as qmail.models.email_domain spells it.
DOMAIN = {
    'sqlite': "lower(substr(email, length(rtrim(email, replace(email, '@', ''))) + 1))",
    'postgresql': "lower(reverse(split_part(reverse(email), '@', 1)))",
}

# Only what a search can use: PostgreSQL refuses a tsvector over 1 MB, and a word is
# found long before its 100,000th character.
TS_MESSAGE = "to_tsvector('simple', left(text, 100000))"
TS_TASK = "to_tsvector('simple', left(title, 10000))"

SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE message_fts USING fts5(text, content='message', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE task_fts USING fts5(title, content='task', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN"
    " INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " END",
    "CREATE TRIGGER message_fts_update AFTER UPDATE OF text ON message BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER task_fts_insert AFTER INSERT ON task BEGIN"
    " INSERT INTO task_fts(rowid, title) VALUES (new.id, new.title); END",
    "CREATE TRIGGER task_fts_delete AFTER DELETE ON task BEGIN"
    " INSERT INTO task_fts(task_fts, rowid, title) VALUES ('delete', old.id, old.title); END",
    "CREATE TRIGGER task_fts_update AFTER UPDATE OF title ON task BEGIN"
    " INSERT INTO task_fts(task_fts, rowid, title) VALUES ('delete', old.id, old.title);"
    " INSERT INTO task_fts(rowid, title) VALUES (new.id, new.title); END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
    "INSERT INTO task_fts(task_fts) VALUES ('rebuild')",
]

POSTGRESQL_SEARCH = [
    f"ALTER TABLE message ADD COLUMN search tsvector GENERATED ALWAYS AS ({TS_MESSAGE}) STORED",
    "CREATE INDEX ix_message_search ON message USING gin (search)",
    f"ALTER TABLE task ADD COLUMN search tsvector GENERATED ALWAYS AS ({TS_TASK}) STORED",
    "CREATE INDEX ix_task_search ON task USING gin (search)",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    sqlite = dialect == 'sqlite'
    for table, old, new, columns in REPLACED:
        op.drop_index(old, table_name=table)
        op.create_index(new, table, columns, unique=False)
    op.create_index('ix_event_branch_kind', 'event', ['branch_id', 'kind'], unique=False)
    # SQLite can add only a VIRTUAL generated column, PostgreSQL (before 18) only a STORED one
    domain = sa.Computed(sa.text(DOMAIN[dialect]), persisted=not sqlite)
    op.add_column('person', sa.Column('domain', sa.String(length=320), domain, nullable=True))
    op.create_index('ix_person_role_domain', 'person', ['role', 'domain'], unique=False)
    op.create_index('ix_person_domain_email', 'person', ['domain', 'email'], unique=False)
    for statement in SQLITE_SEARCH if sqlite else POSTGRESQL_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for name in ('message_fts_insert', 'message_fts_delete', 'message_fts_update',
                     'task_fts_insert', 'task_fts_delete', 'task_fts_update'):
            op.execute(f'DROP TRIGGER {name}')
        op.execute('DROP TABLE message_fts')
        op.execute('DROP TABLE task_fts')
    else:
        op.drop_index('ix_message_search', table_name='message')
        op.drop_column('message', 'search')
        op.drop_index('ix_task_search', table_name='task')
        op.drop_column('task', 'search')
    op.drop_index('ix_person_domain_email', table_name='person')
    op.drop_index('ix_person_role_domain', table_name='person')
    op.drop_column('person', 'domain')
    op.drop_index('ix_event_branch_kind', table_name='event')
    for table, old, new, columns in reversed(REPLACED):
        op.drop_index(new, table_name=table)
        op.create_index(old, table, [columns[0]], unique=False)
