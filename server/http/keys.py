"""The typed key of the one object every handler reaches the domain through (aiohttp
``AppKey``). Each feature keeps the keys of its own objects beside it."""

from __future__ import annotations

from aiohttp import web

from server.services import Services

SERVICES = web.AppKey("services", Services)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]
