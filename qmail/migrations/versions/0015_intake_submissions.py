"""intake submissions: messages from the public contact form awaiting confirmation

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'intakesubmission',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['task_id'], ['task.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('intakesubmission', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_intakesubmission_created_at'), ['created_at'], unique=False
        )
        batch_op.create_index(
            'ix_intakesubmission_email_created', ['email', 'created_at'], unique=False
        )
        batch_op.create_index('ix_intakesubmission_ip_created', ['ip', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('intakesubmission', schema=None) as batch_op:
        batch_op.drop_index('ix_intakesubmission_ip_created')
        batch_op.drop_index('ix_intakesubmission_email_created')
        batch_op.drop_index(batch_op.f('ix_intakesubmission_created_at'))
    op.drop_table('intakesubmission')
