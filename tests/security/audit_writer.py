"""A separate process writing audit events, for the concurrency test of the audit chain:
``python -m tests.security.audit_writer URL SCHEMA|- COUNT LABEL``."""

from __future__ import annotations

import asyncio
import sys

from server import audit
from server.clock import SystemClock
from server.db import create_engine, create_sessionmaker


async def main(url: str, schema: str | None, count: int, label: str) -> None:
    engine = create_engine(url, schema=schema)
    sessionmaker = create_sessionmaker(engine)
    clock = SystemClock()
    try:
        for n in range(count):
            async with sessionmaker() as db:
                # Two events in one transaction, as a request often writes.
                for part in ("a", "b"):
                    audit.record(
                        db,
                        clock,
                        "test.write",
                        actor_id=None,
                        ip=None,
                        details={"writer": label, "n": n, "part": part},
                    )
                await db.commit()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    url, schema, count, label = sys.argv[1:5]
    asyncio.run(main(url, None if schema == "-" else schema, int(count), label))
