"""The application's message writer (group commit), reached by the posting route."""

from __future__ import annotations

from aiohttp import web

from server.conversations.group_commit import MessageWriter

MESSAGE_WRITER = web.AppKey("message_writer", MessageWriter)


def message_writer_of(request: web.Request) -> MessageWriter:
    return request.app[MESSAGE_WRITER]
