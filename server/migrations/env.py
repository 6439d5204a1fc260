"""Alembic environment: migrations run on the connection the server hands over (see db.migrate)."""

from alembic import context

from server.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `teleconsult migrate`, which provides the connection")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds tables, and is a no-op on PostgreSQL.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
