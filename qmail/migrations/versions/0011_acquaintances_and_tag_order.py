"""the address book's figures kept per pair of people; a tag's tasks in activity order

- ``acquaintance``: for each ordered pair of people, the tasks where both are members of
  a branch with messages and the first and last message there, over all such branches
  and over the visible ones (``open_*``); kept up to date by ``threads.acquaintances``
  as messages and members come, counted here from the existing rows.  Before, the
  figures of two team members were counted from nearly every branch at each request.
- ``tasktag.updated_at``: the task's ``updated_at``, copied by the database itself
  (triggers: on a new tag row, and whenever a task's ``updated_at`` changes), so that
  ``tasktag(tag_id, updated_at, task_id)`` lists a tag's tasks newest first as one
  range of an index, instead of reading all of them and sorting.  The triggers are not
  in ``qmail/models.py``; a later migration that rebuilds ``task`` or ``tasktag`` on
  SQLite (a batch copy) drops them with the old table and must create them again.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# Every pair's figures from the branches (as ``threads.acquaintances.recount()`` counts
# them; a copy, so that this migration stays what it was when the code moves on).
COUNT_ALL = """
INSERT INTO acquaintance (person_id, other_id, tasks, first_seen, last_seen,
    open_tasks, open_first_seen, open_last_seen)
SELECT a.person_id, b.person_id,
    count(DISTINCT br.task_id), min(said.first_at), max(said.last_at),
    count(DISTINCT CASE WHEN NOT br.hidden THEN br.task_id END),
    min(CASE WHEN NOT br.hidden THEN said.first_at END),
    max(CASE WHEN NOT br.hidden THEN said.last_at END)
FROM branchmember a
JOIN branchmember b ON b.branch_id = a.branch_id AND b.person_id <> a.person_id
JOIN branch br ON br.id = a.branch_id
JOIN (
    SELECT branch_id, min(sent_at) AS first_at, max(sent_at) AS last_at
    FROM message GROUP BY branch_id
) said ON said.branch_id = a.branch_id
GROUP BY a.person_id, b.person_id
"""

SQLITE_TRIGGERS = [
    "CREATE TRIGGER tasktag_takes_task_time AFTER INSERT ON tasktag BEGIN"
    " UPDATE tasktag SET updated_at = (SELECT updated_at FROM task WHERE id = NEW.task_id)"
    " WHERE task_id = NEW.task_id AND tag_id = NEW.tag_id; END",
    "CREATE TRIGGER tasktag_follows_task AFTER UPDATE OF updated_at ON task"
    " WHEN NEW.updated_at IS NOT OLD.updated_at BEGIN"
    " UPDATE tasktag SET updated_at = NEW.updated_at WHERE task_id = NEW.id; END",
]
POSTGRES_TRIGGERS = [
    "CREATE FUNCTION tasktag_takes_task_time() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN NEW.updated_at := (SELECT updated_at FROM task WHERE id = NEW.task_id);"
    " RETURN NEW; END $$",
    "CREATE TRIGGER tasktag_takes_task_time BEFORE INSERT ON tasktag"
    " FOR EACH ROW EXECUTE FUNCTION tasktag_takes_task_time()",
    "CREATE FUNCTION tasktag_follows_task() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN UPDATE tasktag SET updated_at = NEW.updated_at WHERE task_id = NEW.id;"
    " RETURN NULL; END $$",
    "CREATE TRIGGER tasktag_follows_task AFTER UPDATE OF updated_at ON task FOR EACH ROW"
    " WHEN (NEW.updated_at IS DISTINCT FROM OLD.updated_at)"
    " EXECUTE FUNCTION tasktag_follows_task()",
]
DROP_TRIGGERS = {
    'sqlite': [
        "DROP TRIGGER IF EXISTS tasktag_takes_task_time",
        "DROP TRIGGER IF EXISTS tasktag_follows_task",
    ],
    'postgresql': [
        "DROP TRIGGER IF EXISTS tasktag_takes_task_time ON tasktag",
        "DROP TRIGGER IF EXISTS tasktag_follows_task ON task",
        "DROP FUNCTION IF EXISTS tasktag_takes_task_time()",
        "DROP FUNCTION IF EXISTS tasktag_follows_task()",
    ],
}


def upgrade() -> None:
    op.create_table(
        'acquaintance',
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('other_id', sa.Integer(), nullable=False),
        sa.Column('tasks', sa.Integer(), nullable=False),
        sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('open_tasks', sa.Integer(), nullable=False),
        sa.Column('open_first_seen', sa.DateTime(timezone=True), nullable=True),
        sa.Column('open_last_seen', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.ForeignKeyConstraint(['other_id'], ['person.id']),
        sa.PrimaryKeyConstraint('person_id', 'other_id'),
    )
    op.execute(COUNT_ALL)
    # plain ALTER TABLE (as 0003, 0010): no batch copy of tasktag or task
    op.add_column('tasktag', sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE tasktag SET updated_at = (SELECT updated_at FROM task WHERE task.id = tasktag.task_id)"
    )
    op.create_index(
        'ix_tasktag_tag_updated', 'tasktag', ['tag_id', 'updated_at', 'task_id'], unique=False
    )
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == 'sqlite' else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    op.drop_index('ix_tasktag_tag_updated', table_name='tasktag')
    op.drop_column('tasktag', 'updated_at')
    op.drop_table('acquaintance')
