"""Database engine, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

SessionMaker = async_sessionmaker[AsyncSession]


def create_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """Create the async engine.

    On SQLite every transaction starts with ``BEGIN IMMEDIATE``: two requests that read then
    write (two clicks on "accept") would otherwise both take a read lock and the second would fail
    with "database is locked" instead of waiting its turn. ``schema`` (PostgreSQL only) puts every
    table in that schema, which is how each test run gets a fresh database.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 30}}
        engine = create_async_engine(url, **kwargs)
        _serialize_sqlite_writes(engine.sync_engine)
        return engine
    if schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    return create_async_engine(url, **kwargs)


def sqlite_sync_twin(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine on the same SQLite file, set up the same way; None on PostgreSQL.

    aiosqlite sends every call of a statement (open a cursor, execute, fetch, close) to its
    thread and back through the event loop: a transaction of a few statements makes dozens of
    such trips, each paid in CPU and, under load, in waits for the busy loop. Work that is
    written as one synchronous unit (a batch of messages) runs whole in a thread of its own
    with this engine instead: one trip."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None  # PostgreSQL, or a database no second connection could see
    twin = create_sync_engine(
        engine.url.set(drivername="sqlite"),
        connect_args={"timeout": 30, "check_same_thread": False},
    )
    _serialize_sqlite_writes(twin)
    return twin


def _serialize_sqlite_writes(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    # expire_on_commit=False: handlers serialize objects after the commit that made them.
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending migration (run at start by ``serve`` and by ``migrate``)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several processes starting together: one migrates, the others wait, then find
            # nothing left to do. (SQLite's BEGIN IMMEDIATE already serializes them.)
            await conn.execute(text("SELECT pg_advisory_xact_lock(7240611)"))
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), "head"))


async def insert_unless_exists(
    db: AsyncSession, table: Any, values: dict[str, Any], conflict_columns: list[str]
) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite alike; True if inserted.

    Used where two requests may create the same row at once: the loser learns it lost without an
    IntegrityError, so its transaction stays usable.
    """
    dialect = db.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    result = await db.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]
