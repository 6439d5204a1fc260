"""Typed keys for what the application holds (aiohttp ``AppKey``)."""

from __future__ import annotations

from aiohttp import web

from server.conversations.group_commit import MessageWriter
from server.services import Services
from signaling.media_router import MediaRouter

SERVICES = web.AppKey("services", Services)
MESSAGE_WRITER = web.AppKey("message_writer", MessageWriter)
SFU_CALLS = web.AppKey("sfu_calls", MediaRouter)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


def message_writer_of(request: web.Request) -> MessageWriter:
    return request.app[MESSAGE_WRITER]
