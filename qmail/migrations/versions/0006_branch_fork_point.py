"""the message a hidden branch was opened about: a column, not an id in an event's text

Until now the fork point lived in the ``detail`` of the branch's ``branch_opened`` event
and was parsed back from there.  It becomes ``branch.forked_from_id``, filled from those
events.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE: a batch rebuild of branch fails under the rows referring to it.
    op.add_column('branch', sa.Column('forked_from_id', sa.Integer(), nullable=True))
    connection = op.get_bind()
    event = sa.table('event', sa.column('branch_id'), sa.column('kind'), sa.column('detail'))
    branch = sa.table('branch', sa.column('id'), sa.column('forked_from_id'))
    message = sa.table('message', sa.column('id'))
    rows = connection.execute(
        sa.select(event.c.branch_id, event.c.detail).where(
            event.c.kind == 'branch_opened', event.c.branch_id.is_not(None)
        )
    ).all()
    for branch_id, detail in rows:
        if not detail.isdigit():
            continue  # "team": the task's team branch, opened by a private reply
        exists = connection.execute(
            sa.select(message.c.id).where(message.c.id == int(detail))
        ).first()
        if exists is not None:
            connection.execute(
                branch.update().where(branch.c.id == branch_id).values(forked_from_id=int(detail))
            )


def downgrade() -> None:
    op.drop_column('branch', 'forked_from_id')
