"""OpenAPI 3.1 description built from the routes themselves.

Handlers carry their summary and body model (``@documented``); ``GET /api/openapi.json`` walks
the router, so the description cannot drift from the paths the server really serves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])


def documented(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    public: bool = False,
) -> Callable[[F], F]:
    def mark(handler: F) -> F:
        handler.__openapi__ = {  # type: ignore[attr-defined]
            "summary": summary,
            "body": body,
            "query": query,
            "public": public,
        }
        return handler

    return mark


def _parameters(
    canonical: str, query: type[BaseModel] | None, schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    """Path parameters from the route's own pattern, query parameters from the model the handler
    validates them with: a fuzzer (or an integrator) reaches every operation."""
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 64},
        }
        for name in re.findall(r"{([^}:]+)}", canonical)
    ]
    if query is not None:
        schema = query.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        for name, field in schema.get("properties", {}).items():
            field = dict(field)
            field.pop("title", None)
            if "anyOf" in field:  # Optional[X]: the parameter is X, and may be left out
                kinds = [k for k in field.pop("anyOf") if k.get("type") != "null"]
                field.update(kinds[0] if len(kinds) == 1 else {"anyOf": kinds})
            field.pop("default", None)
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": field}
            )
    return parameters


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
        parameters = _parameters(canonical, info.get("query"), schemas)
        if parameters:
            operation["parameters"] = parameters
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
