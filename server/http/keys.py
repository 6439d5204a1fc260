"""Typed keys for what the application holds (aiohttp ``AppKey``)."""

from __future__ import annotations

from aiohttp import web

from server.services import Services

SERVICES = web.AppKey("services", Services)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]
