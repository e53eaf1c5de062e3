"""Exit 0 when the PostgreSQL server named by argv[1] (a SQLAlchemy URL) answers."""

import sys

from sqlalchemy import create_engine, text

try:
    with create_engine(sys.argv[1]).connect() as connection:
        connection.execute(text("SELECT 1"))
except Exception as error:
    print(f"PostgreSQL not available: {error}", file=sys.stderr)
    sys.exit(1)
