"""Group commit for messages: posts that arrive together are written in one transaction.

Under load, a message's cost is mostly that of its statements and of its commit (and, on SQLite,
of the fsync that makes the commit durable). One writer task per process takes every post waiting
in its queue, writes them with ``posting.write_posts`` and commits once: at 500 messages a second
a batch holds a few posts, at rest it holds one and nothing waits. A request is answered only
once its batch is committed, so an acknowledged message is a stored message, as before.

The author is known by their session token, resolved for the whole batch in the same
transaction (one query instead of one per request).

A batch that fails as a whole (a lost connection, a constraint no check foresaw) is written again
one post at a time, so one bad post cannot take its neighbours down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as sessionmaker_of

from server.accounts.service import resolve_sessions
from server.clock import Clock
from server.conversations.model import NewMessage, Posted
from server.conversations.posting import Outcome, Post, RetryInBatch, write_posts
from server.db import SessionMaker, sqlite_sync_twin
from server.errors import AppError, NotAuthenticated

log = logging.getLogger("teleconsult.messages")

# Enough to amortize the statements, small enough that one batch stays a short transaction.
MAX_BATCH = 64

_T = TypeVar("_T")


@dataclass(frozen=True)
class SignedPost:
    """A post as it arrives over HTTP: its author is known by their session token."""

    token: str
    conversation_id: str
    new: NewMessage
    ip: str | None


_Item = tuple[SignedPost, "asyncio.Future[Outcome]"]


def write_signed_posts(
    db: Session, clock: Clock, signed: list[SignedPost], *, optimistic: bool = False
) -> list[Outcome]:
    users = resolve_sessions(db, clock, {s.token for s in signed})
    outcomes: list[Outcome] = [
        NotAuthenticated("Vous n'êtes pas connecté, ou votre session a expiré.")
    ] * len(signed)
    known = [i for i, s in enumerate(signed) if s.token in users]
    written = write_posts(
        db,
        clock,
        optimistic=optimistic,
        posts=[
            Post(users[signed[i].token], signed[i].conversation_id, signed[i].new, signed[i].ip)
            for i in known
        ],
    )
    for i, outcome in zip(known, written, strict=True):
        outcomes[i] = outcome
    return outcomes


class _Transactions:
    """Runs a synchronous unit of work in a transaction of its own and commits it."""

    def __init__(self, sessionmaker: SessionMaker) -> None:
        self._twin = sqlite_sync_twin(sessionmaker.kw["bind"])
        self._sessionmaker = sessionmaker
        self._sync_sessionmaker = (
            sessionmaker_of(self._twin, expire_on_commit=False) if self._twin else None
        )
        # One thread: SQLite has one writer at a time anyway.
        self._thread = (
            ThreadPoolExecutor(1, thread_name_prefix="message-writer") if self._twin else None
        )

    async def run(self, work: Callable[[Session], _T]) -> _T:
        if self._thread is None:
            # PostgreSQL: asyncpg is async all the way; one network trip per statement.
            async with self._sessionmaker() as db:
                result = await db.run_sync(work)
                await db.commit()
                return result
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run_in_thread, work)

    def _run_in_thread(self, work: Callable[[Session], _T]) -> _T:
        assert self._sync_sessionmaker is not None
        with self._sync_sessionmaker() as db:
            result = work(db)
            db.commit()
            return result

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown()
        if self._twin is not None:
            self._twin.dispose()


class MessageWriter:
    def __init__(self, sessionmaker: SessionMaker, clock: Clock, max_batch: int = MAX_BATCH):
        self._transactions = _Transactions(sessionmaker)
        self._clock = clock
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed or attempted, for figures and tests
        self.posts = 0
        self.busy_seconds = 0.0  # time spent writing, waits for the database included

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="message-writer")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        log.info(
            "message writer: %d posts in %d transactions, %.1f ms each on average",
            self.posts,
            self.batches,
            self.busy_seconds * 1000 / max(1, self.batches),
        )
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._transactions.close()

    async def post(self, post: SignedPost) -> Posted:
        """Write one post with whatever else is waiting; raises the error that refused it."""
        if self._task is None or self._task.done():
            raise RuntimeError("the message writer is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((post, future))
        # Shielded: a client that goes away must not cancel a write that others share.
        outcome = await asyncio.shield(future)
        if isinstance(outcome, AppError):
            raise outcome
        return outcome

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            started = time.perf_counter()
            try:
                await self._write(batch)
            finally:
                self.busy_seconds += time.perf_counter() - started
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Item]) -> None:
        self.batches += 1
        self.posts += len(batch)
        posts = [post for post, _ in batch]
        try:
            try:
                outcomes = await self._transactions.run(
                    partial(write_signed_posts, clock=self._clock, signed=posts, optimistic=True)
                )
            except RetryInBatch:
                outcomes = await self._transactions.run(
                    partial(write_signed_posts, clock=self._clock, signed=posts)
                )
        except Exception as exc:
            if len(batch) > 1:
                log.warning(
                    "a batch of %d messages failed (%r); writing them one by one", len(batch), exc
                )
                for item in batch:
                    await self._write([item])
                return
            _, future = batch[0]
            if not future.done():
                future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
