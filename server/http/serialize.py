"""People and times → JSON, shared by every feature's routes (each feature serializes its own
objects next to its routes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.models import Practice, User


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def person_json(user: User) -> dict[str, Any]:
    """What other people may see of someone."""
    return {
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
        # "Dr Claire Martin": how pages name someone, made once here, not rebuilt in each page.
        "display_name": user.display_name,
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
        "email_verified": user.email_verified_at is not None,
        "privacy_accepted_at": iso(user.privacy_accepted_at),
    }


def practitioner_json(user: User, practice: Practice | None) -> dict[str, Any]:
    return {
        **person_json(user),
        "specialty": user.specialty,
        "practice": {"name": practice.name, "address": practice.address} if practice else None,
    }
