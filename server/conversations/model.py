"""What a message is, in the code: the kinds that posting, reading and announcing pass around."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from server.models import Attachment, Message, User


class Reason(enum.StrEnum):
    """Why a patient writes (domain.md §2)."""

    QUESTION = "question"  # question after a consultation
    TEST_RESULT = "test_result"
    APPOINTMENT = "appointment"
    ADMINISTRATIVE = "administrative"  # administrative or payment
    OTHER = "other"


@dataclass(frozen=True)
class NewMessage:
    client_id: str
    body: str
    reply_allowed: bool = True
    reason: Reason | None = None
    attachment_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A message as just written: the same fields as ``Message``, without the cost of an ORM
    object (a batch makes hundreds a second, and none is loaded back)."""

    id: str
    conversation_id: str
    seq: int
    author_id: str
    client_id: str
    body: str
    reason: str | None
    reply_allowed: bool
    created_at: datetime


@dataclass(frozen=True)
class MessageView:
    message: Message | MessageRow
    author: User
    attachments: list[Attachment]


@dataclass(frozen=True)
class Posted:
    view: MessageView
    created: bool  # False: the same client_id was already posted; this is the first answer
    # Who sees the conversation (to tell their other pages); known for new messages only.
    members: frozenset[str] = frozenset()
