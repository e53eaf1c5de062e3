"""notification preferences: all mail, only tasks one is on, or a daily digest

``person.notifications`` is each person's choice (``mine``, today's behaviour, for
everyone already here); ``digest_sent_at`` and ``digest_after_id`` say when the last
daily digest was taken and the last message it covered.  Plain ALTER TABLE, as in 0003:
a batch rebuild of ``person`` fails under the rows referring to it.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'person',
        sa.Column(
            'notifications',
            sqlmodel.sql.sqltypes.AutoString(length=20),
            nullable=False,
            server_default='mine',
        ),
    )
    op.add_column('person', sa.Column('digest_sent_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('person', sa.Column('digest_after_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('person', 'digest_after_id')
    op.drop_column('person', 'digest_sent_at')
    op.drop_column('person', 'notifications')
