"""HTTP routes for conversations, messages, read marks, uploads and attachments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit, limits
from server.accounts.auth import require_user
from server.conversations import announce, model, reading, service, write_rule
from server.conversations.group_commit import SignedPost
from server.conversations.keys import message_writer_of
from server.conversations.serialize import (
    attachment_json,
    conversation_json,
    message_json,
    write_json,
)
from server.errors import Forbidden, MalformedRequest, NotAuthenticated, NotFound, TooLarge
from server.events import conversation_room
from server.http.auth import SESSION_COOKIE, client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import SearchQuery, parse_body, parse_query
from server.models import Attachment, Message, User
from server.services import Services
from server.storage import ACCEPTED_TYPES, FileMissing, safe_filename

routes = web.RouteTableDef()


class MessageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=limits.CLIENT_ID_MAX_LENGTH)
    body: str = Field(default="", max_length=limits.MESSAGE_MAX_LENGTH)
    reply_allowed: bool = True
    reason: model.Reason | None = None
    attachment_ids: list[str] = Field(
        default_factory=list, max_length=limits.MESSAGE_MAX_ATTACHMENTS
    )


class MessagesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after_seq: int | None = Field(default=None, ge=0, le=limits.SEQ_MAX)
    before_seq: int | None = Field(default=None, ge=1, le=limits.SEQ_MAX)
    limit: int = Field(default=limits.MESSAGES_PAGE_DEFAULT, ge=1, le=limits.MESSAGES_PAGE_MAX)


class ReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    up_to_seq: int = Field(ge=0, le=limits.SEQ_MAX)


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_can_write: bool | None


class ParticipantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)


async def publish_state(services: Services, conversation_id: str) -> None:
    """Tell subscribed tabs to refresh what they show of the conversation (who may write…)."""
    await services.events.publish(
        "conversation:state",
        {"conversation_id": conversation_id},
        room=conversation_room(conversation_id),
    )


@routes.get("/api/conversations")
@documented(
    "The caller's conversations, latest activity first; ?q= searches by name", query=SearchQuery
)
async def list_(request: web.Request) -> web.Response:
    query = parse_query(request, SearchQuery)
    async with services_of(request).sessionmaker() as db:
        user = await require_user(request, db)
        views = await service.list_conversations(db, user, query.q.strip() or None)
        conversations = [v.conversation for v in views]
        unread = await reading.unread_counts(db, user, conversations)
        latest = await reading.latest_messages(db, conversations)
    return web.json_response(
        {
            "items": [
                conversation_json(
                    v,
                    last_message=latest.get(v.conversation.id),
                    unread=unread.get(v.conversation.id, 0),
                )
                for v in views
            ]
        }
    )


async def _conversation_details(
    services: Services, db: AsyncSession, user: User, view: service.ConversationView
) -> dict[str, Any]:
    ids = await service.member_ids(db, view.conversation)
    members = list(await db.scalars(select(User).where(User.id.in_(ids))))
    members.sort(key=lambda u: (u.role == "patient", u.last_name))
    decision = await write_rule.write_decision(db, services, user, view)
    unread = await reading.unread_counts(db, user, [view.conversation])
    body = conversation_json(view, unread=unread[view.conversation.id], participants=members)
    body["permissions"] = {
        **write_json(decision),
        "can_manage": user.role_enum.is_professional,
    }
    return body


@routes.get("/api/conversations/{id}")
@documented("One conversation with the caller's permissions (members only; audited)")
async def show(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        view = await service.access_conversation(
            db, services, user, request.match_info["id"], ip=client_ip(request)
        )
        await db.commit()
        body = await _conversation_details(services, db, user, view)
    return web.json_response(body)


@routes.patch("/api/conversations/{id}")
@documented(
    "Professional: may the patient start messages here (null: follow the practitioner's setting)",
    body=ConversationPatch,
)
async def patch(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, ConversationPatch)
        view = await service.set_patient_can_write(
            db,
            services,
            user,
            request.match_info["id"],
            data.patient_can_write,
            ip=client_ip(request),
        )
        body = await _conversation_details(services, db, user, view)
    await publish_state(services, view.conversation.id)
    return web.json_response(body)


@routes.post("/api/conversations/{id}/participants")
@documented(
    "Professional: add a colleague (nurse, doctor, secretary) to the conversation",
    body=ParticipantBody,
)
async def add_participant(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, ParticipantBody)
        await service.add_participant(
            db, services, user, request.match_info["id"], data.user_id, ip=client_ip(request)
        )
        view = await service.find_conversation(db, user, request.match_info["id"])
        body = await _conversation_details(services, db, user, view)
    await publish_state(services, view.conversation.id)
    return web.json_response(body)


@routes.get("/api/conversations/{id}/messages")
@documented(
    "Messages in seq order: ?after_seq=N to catch up, ?before_seq=N to scroll back",
    query=MessagesQuery,
)
async def messages(request: web.Request) -> web.Response:
    services = services_of(request)
    query = parse_query(request, MessagesQuery)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        _, views, marks = await reading.list_messages(
            db,
            services,
            user,
            request.match_info["id"],
            after_seq=query.after_seq,
            before_seq=query.before_seq,
            limit=query.limit,
            ip=client_ip(request),
        )
    return web.json_response({"items": [message_json(v, marks) for v in views]})


@routes.post("/api/conversations/{id}/messages")
@documented(
    "Post a message; the same client_id again returns the same message (200)", body=MessageBody
)
async def post(request: web.Request) -> web.Response:
    services = services_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("Vous n'êtes pas connecté, ou votre session a expiré.")
    data = await parse_body(request, MessageBody)
    # Written together with the other posts arriving now (group commit), the session checked in
    # the same transaction; committed before the answer.
    posted = await message_writer_of(request).post(
        SignedPost(
            token,
            request.match_info["id"],
            model.NewMessage(
                client_id=data.client_id,
                body=data.body,
                reply_allowed=data.reply_allowed,
                reason=data.reason,
                attachment_ids=tuple(data.attachment_ids),
            ),
            client_ip(request),
        )
    )
    if posted.created:
        body = message_json(posted.view, {})
    else:
        async with services.sessionmaker() as db:
            body, _ = await announce.prepare(db, posted)
    await announce.announce(services, posted, body, posted.members)
    return web.json_response(body, status=201 if posted.created else 200)


@routes.post("/api/conversations/{id}/read")
@documented("Mark messages read up to a seq (never moves backwards)", body=ReadBody)
async def read(request: web.Request) -> web.Response:
    services = services_of(request)
    conversation_id = request.match_info["id"]
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, ReadBody)
        seq = await reading.mark_read(db, services, user, conversation_id, data.up_to_seq)
    await services.events.publish(
        "message:read",
        {"conversation_id": conversation_id, "user_id": user.id, "up_to_seq": seq},
        room=conversation_room(conversation_id),
    )
    return web.Response(status=204)


async def _file_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(limits.UPLOAD_CHUNK_BYTES):
        yield chunk


@routes.get("/api/uploads/limits")
@documented("What an upload may be: the largest size in bytes and the accepted types")
async def upload_limits(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        await require_user(request, db)
    return web.json_response(
        {"max_bytes": services.attachments.max_bytes, "types": sorted(ACCEPTED_TYPES)}
    )


@routes.post("/api/uploads")
@documented("Upload a file (multipart field 'file'): PDF, JPEG, PNG or HEIC; 413/415 otherwise")
async def upload(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
    if user.role == "admin":
        raise Forbidden("Les pièces jointes concernent les conversations de soin.")
    declared = request.content_length
    if declared is not None and declared > services.attachments.max_bytes + 64 * 1024:
        # Refuse before reading a byte; the multipart envelope gets 64 KiB of slack.
        raise TooLarge(
            "Le fichier dépasse la taille maximale de "
            f"{services.attachments.max_bytes // (1024 * 1024)} Mo."
        )
    await services.limiter.take(
        f"upload:{user.id}",
        limits.UPLOADS_PER_USER_PER_HOUR,
        limits.LOGIN_WINDOW * 4,
        "Trop de fichiers envoyés en une heure. Réessayez plus tard.",
    )
    if not request.content_type.startswith("multipart/"):
        raise MalformedRequest("Envoyez le fichier en multipart/form-data, dans le champ « file ».")
    try:
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and (not isinstance(part, BodyPartReader) or part.name != "file"):
            part = await reader.next()
    except ValueError as exc:  # no boundary, a broken part header: aiohttp says ValueError
        raise MalformedRequest(
            "Le fichier n'a pas été reçu correctement (envoi multipart/form-data illisible)."
        ) from exc
    if part is None:
        raise MalformedRequest("Aucun fichier reçu : le champ « file » est absent.")
    stored = await services.attachments.save(_file_chunks(part))
    async with services.sessionmaker() as db:
        attachment = Attachment(
            uploader_id=user.id,
            storage_name=stored.name,
            size=stored.size,
            content_type=stored.content_type,
            filename=safe_filename(part.filename, stored.content_type),
            created_at=services.clock.now(),
        )
        db.add(attachment)
        audit.record(
            db,
            services.clock,
            "attachment.uploaded",
            actor_id=user.id,
            ip=client_ip(request),
            resource_type="attachment",
            resource_id=attachment.id,
            details={"size": stored.size, "content_type": stored.content_type},
        )
        await db.commit()
    return web.json_response(attachment_json(attachment), status=201)


@routes.get("/api/attachments/{id}")
@documented("Download an attachment (members of its conversation; its uploader before posting)")
async def download(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        attachment = await db.get(Attachment, request.match_info["id"])
        # One answer, word for word, whether the attachment does not exist or is not the
        # caller's (the conversation's own 404 text told an outsider that it existed).
        unknown = NotFound("Pièce jointe introuvable.")
        if attachment is None:
            raise unknown
        if attachment.message_id is None:
            if attachment.uploader_id != user.id:
                raise unknown
        else:
            message = await db.get(Message, attachment.message_id)
            assert message is not None
            try:
                await service.find_conversation(db, user, message.conversation_id)
            except NotFound:
                raise unknown from None
        audit.record(
            db,
            services.clock,
            "attachment.read",
            actor_id=user.id,
            ip=client_ip(request),
            resource_type="attachment",
            resource_id=attachment.id,
        )
        await db.commit()
    missing = NotFound("Le fichier de cette pièce jointe est introuvable sur le serveur.")
    if attachment.storage_name is None:
        raise missing  # still in clear: sealed at the next start
    inline = attachment.content_type in {"application/pdf", "image/jpeg", "image/png"}
    disposition = "inline" if inline else "attachment"
    # Decrypted as it is sent, a chunk at a time: a 20 MB file never sits whole in memory.
    pieces = services.attachments.chunks(attachment.storage_name)
    try:
        first = await anext(pieces)
    except FileMissing:
        raise missing from None
    response = web.StreamResponse(
        headers={
            "Content-Type": attachment.content_type,
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(attachment.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
    response.content_length = attachment.size
    await response.prepare(request)
    try:
        await response.write(first)
        async for piece in pieces:
            await response.write(piece)
    finally:
        await pieces.aclose()
    await response.write_eof()
    return response
