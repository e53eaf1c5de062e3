"""search: each message's branch in SQLite's full-text index, and the indexes merged

- ``message_fts`` gets a second column, ``branch_id`` (from ``message.branch_id``, so
  each message carries its branch's id as a token), and is rebuilt.  A client's search
  then asks the index for the words *and* one of their own branches
  (``text : ("the") AND branch_id : ("12" OR "34")``): FTS5 intersects the two lists
  itself, skipping through the word's list, instead of qmail reading every match of a
  common word or looking each of the client's messages up (``qmail.queries.search``).
  The words are always asked for in the ``text`` column only, so "12" typed into the
  search box never matches a branch.  The triggers also follow a message moved to
  another branch.
- Both indexes are merged into one segment each (``optimize``): FTS5 adds a segment per
  batch of new rows and merges them only now and then, and every seek goes through each
  segment (thirteen in a store of a million messages filled mail by mail).

A million messages take about 20 s.  PostgreSQL: nothing to do (its planner reads a
client's messages by their branches and checks each one's ``tsvector``).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TRIGGERS = ('message_fts_insert', 'message_fts_delete', 'message_fts_update')
OPTIONS = "content='message', content_rowid='id', tokenize='unicode61 remove_diacritics 2'"

BY_BRANCH = [
    f"CREATE VIRTUAL TABLE message_fts USING fts5(text, branch_id, {OPTIONS})",
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN"
    " INSERT INTO message_fts(rowid, text, branch_id) VALUES (new.id, new.text, new.branch_id);"
    " END",
    "CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, text, branch_id)"
    " VALUES ('delete', old.id, old.text, old.branch_id); END",
    "CREATE TRIGGER message_fts_update AFTER UPDATE OF text, branch_id ON message BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, text, branch_id)"
    " VALUES ('delete', old.id, old.text, old.branch_id);"
    " INSERT INTO message_fts(rowid, text, branch_id) VALUES (new.id, new.text, new.branch_id);"
    " END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
]

TEXT_ONLY = [  # as migration 0008 made it
    f"CREATE VIRTUAL TABLE message_fts USING fts5(text, {OPTIONS})",
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN"
    " INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " END",
    "CREATE TRIGGER message_fts_update AFTER UPDATE OF text ON message BEGIN"
    " INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
]


def _replace_message_index(statements: list[str]) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for name in TRIGGERS:
        op.execute(f'DROP TRIGGER {name}')
    op.execute('DROP TABLE message_fts')
    for statement in statements:
        op.execute(statement)
    op.execute("INSERT INTO message_fts(message_fts) VALUES ('optimize')")
    op.execute("INSERT INTO task_fts(task_fts) VALUES ('optimize')")


def upgrade() -> None:
    _replace_message_index(BY_BRANCH)


def downgrade() -> None:
    _replace_message_index(TEXT_ONLY)
