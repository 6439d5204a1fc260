"""Who may write, read from the database: the inputs of ``policy.patient_may_write`` for one
conversation (``write_decision``) or for many at once (``WriteRules``, the SQL column of the
latest professional message's reply setting), and the decision with its French reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.conversations.policy import ALLOWED, Away, WriteDecision, patient_may_write
from server.conversations.service import ConversationView
from server.models import AwayException, Conversation, Message, MessagingSettings, Role, User
from server.services import Services

# The reply setting of the latest professional message (None: no professional wrote yet), as a
# column of a query on conversations. Built once.
LATEST_PROFESSIONAL_REPLY_ALLOWED = (
    select(Message.reply_allowed)
    .where(
        Message.conversation_id == Conversation.id,
        Message.author_id != Conversation.patient_id,
    )
    .order_by(Message.seq.desc())
    .limit(1)
    .correlate(Conversation)
    .scalar_subquery()
)


@dataclass(frozen=True, slots=True)
class WriteRules:
    """What of a practitioner's messaging settings decides whether a patient may write: read as
    plain columns where many conversations are decided at once (a batch of posts)."""

    open: bool
    away_from: datetime | None
    away_until: datetime | None
    away_message: str | None

    @classmethod
    def of(cls, settings: MessagingSettings | None) -> WriteRules | None:
        if settings is None:
            return None
        return cls(settings.open, settings.away_from, settings.away_until, settings.away_message)


def has_away_period(settings: MessagingSettings | WriteRules | None) -> bool:
    return settings is not None and bool(settings.away_from or settings.away_until)


def decide(
    user: User,
    practitioner_name: str,
    patient_can_write: bool | None,
    rules: WriteRules | None,
    away_exceptions: frozenset[str],
    latest_professional_reply_allowed: bool | None,
    now: datetime,
) -> WriteDecision:
    """The write rule applied to what the database says of this conversation."""
    if user.role != Role.PATIENT:
        return ALLOWED
    away = None
    if rules is not None and has_away_period(rules):
        away = Away(rules.away_from, rules.away_until, rules.away_message, away_exceptions)
    return patient_may_write(
        patient_id=user.id,
        practitioner_name=practitioner_name,
        patient_can_write=patient_can_write,
        practitioner_open=rules.open if rules else False,
        away=away,
        latest_professional_reply_allowed=latest_professional_reply_allowed,
        now=now,
    )


async def write_decision(
    db: AsyncSession, services: Services, user: User, view: ConversationView
) -> WriteDecision:
    if user.role != Role.PATIENT:
        return ALLOWED
    conversation = view.conversation
    settings = await db.get(MessagingSettings, conversation.practitioner_id)
    exceptions: frozenset[str] = frozenset()
    if has_away_period(settings):
        exceptions = frozenset(
            await db.scalars(
                select(AwayException.patient_id).where(
                    AwayException.user_id == conversation.practitioner_id
                )
            )
        )
    latest = await db.scalar(
        select(LATEST_PROFESSIONAL_REPLY_ALLOWED).where(Conversation.id == conversation.id)
    )
    return decide(
        user,
        view.practitioner.display_name,
        conversation.patient_can_write,
        WriteRules.of(settings),
        exceptions,
        latest,
        services.clock.now(),
    )
