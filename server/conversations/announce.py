"""Telling members' open pages about a message just posted, whatever posted it (the composer, a
document, a payment request, a call)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.conversations import model, reading
from server.conversations.serialize import message_json
from server.events import conversation_room, user_room
from server.services import Services


async def prepare(db: AsyncSession, posted: model.Posted) -> tuple[dict[str, Any], set[str]]:
    """The message as members see it, and who to tell (nobody when it is a replayed retry)."""
    if posted.created:
        # Nobody else can have read a message that did not exist a moment ago.
        return message_json(posted.view, {}), set(posted.members)
    marks = await reading.read_marks(db, posted.view.message.conversation_id)
    return message_json(posted.view, marks), set()


async def announce(
    services: Services,
    posted: model.Posted,
    body: dict[str, Any],
    members: Collection[str],
) -> None:
    """Push a new message to the conversation's open views, and its activity to every member's
    other pages (the conversation list). Call after the commit, outside the session.

    A page with the conversation open gets the message itself and nothing more: the message
    says all that the activity would (pages refresh their list on either), and sending both
    doubled the frames written per message."""
    if not posted.created:
        return
    conversation_id = posted.view.message.conversation_id
    room = conversation_room(conversation_id)
    await services.events.publish("message:new", body, room=room)
    activity = {"conversation_id": conversation_id, "seq": body["seq"]}
    if members:
        await services.events.publish(
            "conversation:activity",
            activity,
            room=[user_room(member_id) for member_id in members],
            skip_room=room,
        )
