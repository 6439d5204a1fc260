"""The schema the migrations build is the one the models describe: a model changed without its
migration (or the reverse) fails here, on SQLite and on PostgreSQL, instead of in production."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from server.db import create_engine, migrate
from server.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return [
        diff
        for diff in compare_metadata(context, Base.metadata)
        # Alembic's own bookkeeping table is not a model.
        if not (diff[0] == "remove_table" and diff[1].name == "alembic_version")
    ]


async def test_the_migrated_schema_is_the_models_schema(
    database: tuple[str, str | None],
) -> None:
    engine = create_engine(database[0], schema=database[1])
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
