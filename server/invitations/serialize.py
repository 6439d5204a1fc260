"""Invitations and their deliveries → JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.http.serialize import iso
from server.invitations.service import effective_status, status_changed_at
from server.models import Delivery, Invitation


def delivery_json(delivery: Delivery | None) -> dict[str, Any] | None:
    if delivery is None:
        return None
    return {
        "status": delivery.status,
        "channel": delivery.channel,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "sent_at": iso(delivery.sent_at),
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.status == "retrying" else None,
    }


def invitation_json(
    invitation: Invitation, delivery: Delivery | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "first_name": invitation.first_name,
        "last_name": invitation.last_name,
        "email": invitation.email,
        "phone": invitation.phone,
        "channel": invitation.channel,
        "status": effective_status(invitation, now),
        "status_changed_at": iso(status_changed_at(invitation, now)),
        "created_at": iso(invitation.created_at),
        "expires_at": iso(invitation.expires_at),
        "conversation_id": invitation.conversation_id,
        "delivery_status": delivery.status if delivery else None,
        "delivery": delivery_json(delivery),
    }
