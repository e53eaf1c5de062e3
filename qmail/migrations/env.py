"""Alembic environment: runs migrations on the engine handed over by ``qmail.db``."""

from alembic import context
from sqlmodel import SQLModel

import qmail.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from qmail.db import include_name

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    context.run_migrations()
