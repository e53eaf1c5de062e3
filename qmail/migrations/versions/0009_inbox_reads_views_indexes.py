"""the inbox: what each person has read, saved views, and an index for the assignee filter

- ``taskread``: per person and task, the newest message they could see when they last
  opened the task page; the inbox shows a task as unread when a newer visible message
  (not their own) exists.
- ``savedview``: a person's named inbox filters (a normalised query string).
- ``task(assignee_id, updated_at, id)``: "mine", "unassigned" and a teammate's tasks,
  newest first, read as a range of one index; ``task(assignee_id, status, updated_at,
  id)`` the same with a status ("Mine" and "Unassigned" are open tasks), and their
  counts from the index alone.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'taskread',
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.ForeignKeyConstraint(['task_id'], ['task.id']),
        sa.PrimaryKeyConstraint('person_id', 'task_id'),
    )
    op.create_table(
        'savedview',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('query', sa.String(length=1000), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id', 'name'),
    )
    op.create_index(
        'ix_task_assignee_updated', 'task', ['assignee_id', 'updated_at', 'id'], unique=False
    )
    op.create_index(
        'ix_task_assignee_status_updated', 'task', ['assignee_id', 'status', 'updated_at', 'id'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_task_assignee_status_updated', table_name='task')
    op.drop_index('ix_task_assignee_updated', table_name='task')
    op.drop_table('savedview')
    op.drop_table('taskread')
