"""Conversations and messages → JSON (shared by HTTP routes and socket.io events)."""

from __future__ import annotations

from typing import Any

from server.conversations.model import MessageView
from server.conversations.policy import WriteDecision
from server.conversations.service import ConversationView
from server.http.serialize import iso, person_json
from server.models import Attachment, User


def author_json(user: User) -> dict[str, Any]:
    # The author's own name and role, so a secretary's message shows as hers, not the doctor's.
    return person_json(user)


def attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "url": f"/api/attachments/{attachment.id}",
    }


def message_json(view: MessageView, marks: dict[str, int] | None = None) -> dict[str, Any]:
    m = view.message
    read_by = sorted(
        user_id for user_id, seq in (marks or {}).items() if seq >= m.seq and user_id != m.author_id
    )
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "client_id": m.client_id,
        "author": author_json(view.author),
        "body": m.body,
        "reason": m.reason,
        "reply_allowed": m.reply_allowed,
        "attachments": [attachment_json(a) for a in view.attachments],
        "created_at": iso(m.created_at),
        "read_by": read_by,
    }


def write_json(decision: WriteDecision) -> dict[str, Any]:
    return {
        "can_write": decision.allowed,
        "reason": decision.reason,
        "code": decision.code,
        "until": iso(decision.until),
    }


def conversation_json(
    view: ConversationView,
    *,
    last_message: MessageView | None = None,
    unread: int = 0,
    participants: list[User] | None = None,
) -> dict[str, Any]:
    c = view.conversation
    people = participants or [view.practitioner, view.patient]
    return {
        "id": c.id,
        "patient": person_json(view.patient),
        "practitioner": person_json(view.practitioner),
        "participants": [person_json(p) for p in people],
        "origin": c.origin,
        "patient_can_write": c.patient_can_write,
        "last_seq": c.last_seq,
        "last_message": message_json(last_message) if last_message else None,
        "unread": unread,
        "created_at": iso(c.created_at),
    }
