"""HTTP routes for documents sent in a conversation."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server import limits
from server.accounts.auth import require_user
from server.conversations import announce
from server.documents import service
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body
from server.http.serialize import iso, person_json
from server.models import Document

routes = web.RouteTableDef()


class DocumentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["prescription", "sick_leave", "other"]
    lines: list[Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=list, max_length=service.MAX_LINES
    )
    attachment_id: str | None = Field(default=None, max_length=64)
    title: str | None = Field(default=None, max_length=120)
    sick_leave_days: int | None = None
    sick_leave_from: date | None = None
    treating_doctor: bool = False
    replaces_id: str | None = Field(default=None, max_length=64)
    client_id: str | None = Field(default=None, min_length=1, max_length=64)


def document_json(document: Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "conversation_id": document.conversation_id,
        "kind": document.kind,
        "message_id": document.message_id,
        "attachment_id": document.attachment_id,
        "url": f"/api/attachments/{document.attachment_id}",
        "replaces_id": document.replaces_id,
        "generated": document.generated,
        "created_at": iso(document.created_at),
        "author_id": document.author_id,
    }


@routes.post("/api/conversations/{id}/documents")
@documented(
    "Professional: send a document (generated prescription or sick-leave PDF, or an upload)",
    body=DocumentBody,
)
async def send(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, DocumentBody)
        sent = await service.send_document(
            db,
            services,
            user,
            request.match_info["id"],
            service.NewDocument(
                kind=data.kind,
                lines=tuple(data.lines),
                attachment_id=data.attachment_id,
                title=data.title,
                sick_leave_days=data.sick_leave_days,
                sick_leave_from=data.sick_leave_from,
                treating_doctor=data.treating_doctor,
                replaces_id=data.replaces_id,
                client_id=data.client_id,
            ),
            ip=client_ip(request),
        )
        body, members = await announce.prepare(db, sent.posted)
    await announce.announce(services, sent.posted, body, members)
    return web.json_response(
        {**body, "document": document_json(sent.document)},
        status=201 if sent.posted.created else 200,
    )


@routes.post("/api/conversations/{id}/documents/preview")
@documented(
    "Doctor: the PDF of a prescription or sick leave as it would be sent; nothing is stored",
    body=DocumentBody,
)
async def preview(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, DocumentBody)
        await services.limiter.take(
            f"document-preview:{user.id}",
            limits.PREVIEWS_PER_MINUTE,
            limits.PREVIEW_WINDOW,
            "Trop d'aperçus demandés d'affilée. Réessayez dans une minute.",
        )
        pdf_bytes = await service.preview_document(
            db,
            services,
            user,
            request.match_info["id"],
            service.NewDocument(
                kind=data.kind,
                lines=tuple(data.lines),
                attachment_id=data.attachment_id,
                title=data.title,
                sick_leave_days=data.sick_leave_days,
                sick_leave_from=data.sick_leave_from,
                treating_doctor=data.treating_doctor,
                replaces_id=data.replaces_id,
            ),
        )
    return web.Response(
        body=pdf_bytes,
        content_type="application/pdf",
        headers={
            "Content-Disposition": 'inline; filename="apercu.pdf"',
            "Cache-Control": "no-store",
        },
    )


@routes.get("/api/conversations/{id}/documents")
@documented("The documents sent in a conversation, newest first")
async def list_(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        documents = await service.list_documents(db, user, request.match_info["id"])
    return web.json_response({"items": [document_json(d) for d in documents]})


@routes.get("/api/documents")
@documented("Every document of all my conversations, newest first, with who sent it")
async def mine(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        found = await service.documents_of(db, user)
    return web.json_response(
        {
            "items": [
                {**document_json(document), "author": person_json(author), "filename": filename}
                for document, author, filename in found
            ]
        }
    )
