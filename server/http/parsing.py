"""Request bodies: JSON read with a size limit, validated by pydantic models, errors in French."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server import limits
from server.errors import InvalidInput, MalformedRequest, TooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

# Where a middleware that had to read the body first (``idempotency``) leaves it for the handler.
RAW_BODY = web.RequestKey("raw_body", bytes)

# pydantic error types → a sentence a person understands.
_MESSAGES = {
    "missing": "champ obligatoire",
    "extra_forbidden": "champ inconnu",
    "string_type": "doit être un texte",
    "bool_type": "doit être vrai ou faux",
    "bool_parsing": "doit être vrai ou faux",
    "int_type": "doit être un nombre entier",
    "int_parsing": "doit être un nombre entier",
    "list_type": "doit être une liste",
    "dict_type": "doit être un objet",
    "model_type": "doit être un objet",
    "date_type": "doit être une date (AAAA-MM-JJ)",
    "date_parsing": "doit être une date (AAAA-MM-JJ)",
    "date_from_datetime_parsing": "doit être une date (AAAA-MM-JJ)",
    "datetime_parsing": "doit être une date et une heure ISO 8601",
    "datetime_type": "doit être une date et une heure ISO 8601",
    "string_too_short": "trop court",
    "string_too_long": "trop long",
    "int_from_float": "doit être un nombre entier",
    "float_type": "doit être un nombre",
    "float_parsing": "doit être un nombre",
    "literal_error": "valeur non acceptée",
    "enum": "valeur non acceptée",
    "string_pattern_mismatch": "format non valable",
}


# Bounds, with the limit from the error's context.
_BOUNDS = {
    "greater_than_equal": "doit être supérieur ou égal à {ge}",
    "greater_than": "doit être supérieur à {gt}",
    "less_than_equal": "doit être inférieur ou égal à {le}",
    "less_than": "doit être inférieur à {lt}",
    "too_long": "{max_length} éléments au plus",
    "too_short": "{min_length} éléments au moins",
}


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validation_problem(error: ValidationError) -> InvalidInput:
    errors = []
    for item in error.errors(include_url=False):
        field = _field_name(item["loc"])
        if item["type"] == "value_error":
            # Our own validators raise ValueError with a French sentence: keep it as is.
            message = str(item.get("ctx", {}).get("error", item["msg"]))
        elif item["type"] == "string_too_short" and item.get("ctx", {}).get("min_length") == 1:
            message = "ne peut pas être vide"
        elif item["type"] in ("string_too_short", "string_too_long"):
            bound = "min_length" if item["type"] == "string_too_short" else "max_length"
            count = item.get("ctx", {}).get(bound)
            message = (
                f"{count} caractères {'au moins' if bound == 'min_length' else 'au plus'}"
                if count is not None
                else _MESSAGES[item["type"]]
            )
        elif item["type"] in _BOUNDS:
            message = _BOUNDS[item["type"]].format(**item.get("ctx", {}))
        else:
            message = _MESSAGES.get(item["type"], item["msg"])
        errors.append({"field": field, "detail": message})
    detail = "; ".join(
        f"{e['field']} : {e['detail']}" if e["field"] else e["detail"] for e in errors
    )
    return InvalidInput(detail, extra={"errors": errors})


async def read_body(request: web.Request, max_bytes: int, too_large: str) -> bytes:
    """The whole body, up to ``max_bytes``. A body arrives in as many reads as the network and
    any proxy split it into (``content.read(n)`` returned only what was buffered, so a body cut
    in two was taken for its first half); it is refused as soon as it passes the limit, before
    the rest is read."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge(too_large)
    cached: bytes | None = request.get(RAW_BODY)
    if cached is not None:
        if len(cached) > max_bytes:
            raise TooLarge(too_large)
        return cached
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request) -> Any:
    if request.content_type not in {"application/json", ""}:
        raise UnsupportedMediaType("Le corps de la requête doit être du JSON (application/json).")
    raw = await read_body(
        request,
        limits.JSON_BODY_MAX_BYTES,
        f"Le corps de la requête dépasse {limits.JSON_BODY_MAX_BYTES // 1024} Kio.",
    )
    if not raw.strip():
        if request.method == "PUT":
            # A PUT replaces every field: an empty body (a cut connection, a client bug) must
            # not read as "all empty" and wipe the IBAN or the billing profile.
            raise MalformedRequest(
                "Le corps de la requête est vide : un PUT remplace l'ensemble, envoyez l'objet "
                "complet."
            )
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"Le corps de la requête n'est pas un JSON valide ({exc}).") from exc


async def parse_body(request: web.Request, model: type[M]) -> M:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise MalformedRequest("Le corps de la requête doit être un objet JSON.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from exc


class SearchQuery(BaseModel):
    """``?q=``: a name, or part of one."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(default="", max_length=100)


def parse_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_problem(exc) from exc
