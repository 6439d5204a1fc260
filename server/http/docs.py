"""OpenAPI 3.1 description built from the routes themselves.

Handlers carry their summary and body model (``@documented``); ``GET /api/openapi.json`` walks
the router, so the description cannot drift from the paths the server really serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])


def documented(
    summary: str, *, body: type[BaseModel] | None = None, public: bool = False
) -> Callable[[F], F]:
    def mark(handler: F) -> F:
        handler.__openapi__ = {"summary": summary, "body": body, "public": public}  # type: ignore[attr-defined]
        return handler

    return mark


def build_openapi(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for route in app.router.routes():
        info = getattr(route.handler, "__openapi__", None)
        canonical = route.resource.canonical if route.resource else None
        if info is None or canonical is None or route.method == "HEAD":
            continue
        operation: dict[str, Any] = {
            "summary": info["summary"],
            "responses": {
                "default": {
                    "description": "Error",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                },
                "2XX": {"description": "Success", "content": {"application/json": {}}},
            },
        }
        if not info["public"]:
            operation["security"] = [{"cookieSession": []}]
        body = info["body"]
        if body is not None:
            schema = body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[body.__name__] = schema
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{body.__name__}"}
                    }
                },
            }
        paths.setdefault(canonical, {})[route.method.lower()] = operation
    schemas["Problem"] = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
        "required": ["type", "title", "status", "detail"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Téléconsult API", "version": "0.1.0"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "cookieSession": {"type": "apiKey", "in": "cookie", "name": "tc_session"}
            },
        },
    }
