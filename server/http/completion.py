"""Handlers run to completion, even when the client goes away mid-request.

A handler cancelled in the middle of a database transaction (the page navigated away, the
browser aborted its fetch) left its connection in a transaction nobody rolled back: on SQLite,
whose transactions start with ``BEGIN IMMEDIATE``, that connection kept the write lock until it
was garbage-collected, and every other request waited the 30 s busy timeout ("database is
locked"). aiohttp's own server does not cancel handlers by default, but its test server and an
operator's ``handler_cancellation=True`` do; this keeps the behaviour one and the same: the
request's work finishes (its transaction commits or rolls back as written), only its answer is
lost.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler


@web.middleware
async def run_to_completion_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    task = asyncio.ensure_future(handler(request))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # The client is gone: let the work finish, then let the cancellation go on.
        if not task.done():
            await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: it was the work's own outcome, nobody is waiting
        raise
