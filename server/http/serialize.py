"""Domain objects → JSON. One function per object kind, shared by every route."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.invitations.service import effective_status, status_changed_at
from server.models import Delivery, Invitation, Practice, User


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def person_json(user: User) -> dict[str, Any]:
    """What other people may see of someone."""
    return {
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
    }


def user_json(user: User) -> dict[str, Any]:
    """What a user sees of their own account."""
    return {
        **person_json(user),
        "email": user.email,
        "phone": user.phone,
        "birth_date": user.birth_date.isoformat() if user.birth_date else None,
        "rpps": user.rpps,
        "specialty": user.specialty,
        "sector": user.sector,
        "practice_id": user.practice_id,
        "created_at": iso(user.created_at),
        "pending_approval": user.pending_approval,
    }


def practitioner_json(user: User, practice: Practice | None) -> dict[str, Any]:
    return {
        **person_json(user),
        "specialty": user.specialty,
        "practice": {"name": practice.name, "address": practice.address} if practice else None,
    }


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
