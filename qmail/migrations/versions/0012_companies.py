"""companies: the team's names for them and the domains merged into one

- ``company``: a company the team renamed or merged, by its key domain, with its name.
- ``companydomain``: each registrable domain mapped to a company (its key's own too), so a
  merge is one more row and the address book and the inbox's filter follow it.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'company',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('domain', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('domain'),
    )
    op.create_table(
        'companydomain',
        sa.Column('domain', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('company_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['company_id'], ['company.id']),
        sa.PrimaryKeyConstraint('domain'),
    )
    op.create_index(
        op.f('ix_companydomain_company_id'), 'companydomain', ['company_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_companydomain_company_id'), table_name='companydomain')
    op.drop_table('companydomain')
    op.drop_table('company')
