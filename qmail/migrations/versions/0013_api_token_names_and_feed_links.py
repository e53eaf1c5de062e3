"""API tokens a person manages (a name, when last used, revoked) and the activity feed link

``apitoken.name`` is what its owner called it on ``/settings`` (tokens made before have
none); ``last_used_at`` is refreshed at most every few minutes; a token with a
``revoked_at`` opens nothing.  ``person.feed_nonce`` is the random part of the person's
signed Atom feed link (``qmail.auth.feeds``): ``NULL`` means no feed link, a new value
replaces the old link.  Plain ALTER TABLE, as in 0003 and 0010.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'apitoken',
        sa.Column(
            'name',
            sqlmodel.sql.sqltypes.AutoString(length=100),
            nullable=False,
            server_default='',
        ),
    )
    op.add_column('apitoken', sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('apitoken', sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        'person',
        sa.Column('feed_nonce', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )


def downgrade() -> None:
    op.drop_column('person', 'feed_nonce')
    op.drop_column('apitoken', 'revoked_at')
    op.drop_column('apitoken', 'last_used_at')
    op.drop_column('apitoken', 'name')
