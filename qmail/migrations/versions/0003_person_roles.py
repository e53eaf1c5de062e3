"""person roles: team membership follows the configuration, plus explicit roles

``is_team`` was decided once, when an address was first seen, and could never change.
It becomes ``role``: ``team`` or ``external`` when chosen explicitly, NULL to follow
``mail.team_domains`` as the configuration says at the time of asking.  Every existing
person follows the configuration (nobody could choose a role before).

Plain ALTER TABLE, not batch mode: on SQLite a batch rebuild drops and recreates
``person``, which the rows referring to it (tasks, messages, tokens) forbid while foreign
keys are on.  SQLite 3.35 and newer drop a plain column in place.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'person', sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
    )
    op.drop_column('person', 'is_team')


def downgrade() -> None:
    op.add_column(
        'person', sa.Column('is_team', sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute("UPDATE person SET is_team = COALESCE(role = 'team', FALSE)")
    op.drop_column('person', 'role')
