"""Writing messages: one path for one message and for many at once.

``write_posts`` takes several posts (to one or many conversations) and writes them in the
caller's transaction with a handful of statements for the whole batch: the conversations are read
(and locked) in one query, the retries, the write rule, the members and the attachments in a few
more, and the messages, read marks and audit events are inserted with one statement each. Under
load that is what lets one process keep up: the cost of a statement is paid once per batch, not
once per message (``group_commit.MessageWriter`` gathers concurrent requests into batches).

The result is the same as writing the posts one after the other, in order: a post may depend on
an earlier one of the same batch (a doctor's "no reply" followed by the patient's answer; the same
``client_id`` sent twice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    exists,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server import audit, limits
from server.clock import Clock
from server.conversations.model import MessageRow, MessageView, NewMessage, Posted, Reason
from server.conversations.policy import WriteDecision
from server.conversations.reading import read_mark_upsert
from server.conversations.service import is_member
from server.conversations.write_rule import (
    LATEST_PROFESSIONAL_REPLY_ALLOWED,
    WriteRules,
    decide,
    has_away_period,
)
from server.errors import AppError, Forbidden, InvalidInput, NotFound
from server.models import (
    PRACTITIONER,
    Attachment,
    AwayException,
    Conversation,
    ConversationParticipant,
    Message,
    MessagingSettings,
    Role,
    SecretaryAssignment,
    User,
    new_id,
)
from server.models.accounts import display_name
from server.services import Services

_MESSAGES = cast(Table, Message.__table__)
_CONVERSATIONS_TABLE = cast(Table, Conversation.__table__)


@dataclass(frozen=True)
class Post:
    user: User
    conversation_id: str
    new: NewMessage
    ip: str | None


Outcome = Posted | AppError


# Built once, bound per batch: building a statement costs more than running it.

# Does anyone beyond the patient and the practitioner see the conversation? Only then is the
# query for those others worth its round trip.
_HAS_OTHER_MEMBERS = or_(
    exists().where(SecretaryAssignment.doctor_id == Conversation.practitioner_id),
    exists().where(ConversationParticipant.conversation_id == Conversation.id),
)
# Plain columns, not ORM objects: a batch decides dozens of conversations, and loading each
# with its two people and its settings as objects cost more than the rest of the batch.
_CONVERSATIONS = (
    select(
        Conversation.id,
        Conversation.patient_id,
        Conversation.practitioner_id,
        Conversation.patient_can_write,
        Conversation.last_seq,
        PRACTITIONER.role,
        PRACTITIONER.first_name,
        PRACTITIONER.last_name,
        MessagingSettings.user_id.label("settings_of"),
        MessagingSettings.open,
        MessagingSettings.away_from,
        MessagingSettings.away_until,
        MessagingSettings.away_message,
        LATEST_PROFESSIONAL_REPLY_ALLOWED.label("latest_reply_allowed"),
        _HAS_OTHER_MEMBERS.label("has_others"),
    )
    .join(PRACTITIONER, PRACTITIONER.id == Conversation.practitioner_id)
    .outerjoin(MessagingSettings, MessagingSettings.user_id == Conversation.practitioner_id)
    .where(Conversation.id.in_(bindparam("ids", expanding=True)))
    .order_by(Conversation.id)  # rows locked in one order: batches cannot deadlock
    # The row locks (PostgreSQL) serialize writers of one conversation across processes, so
    # the seq is gap-free and a retry is seen by the check below; SQLite's BEGIN IMMEDIATE
    # already serializes every writer.
    .with_for_update(of=Conversation)
)

# The members beyond the patient and the practitioner: the practitioners' secretaries and the
# conversations' added participants.
_OTHER_MEMBERS = union_all(
    select(
        literal("secretary"), SecretaryAssignment.doctor_id, SecretaryAssignment.secretary_id
    ).where(SecretaryAssignment.doctor_id.in_(bindparam("practitioners", expanding=True))),
    select(
        literal("participant"),
        ConversationParticipant.conversation_id,
        ConversationParticipant.user_id,
    ).where(ConversationParticipant.conversation_id.in_(bindparam("ids", expanding=True))),
)

_ADVANCE = (
    update(_CONVERSATIONS_TABLE)
    .where(_CONVERSATIONS_TABLE.c.id == bindparam("b_id"))
    .values(last_seq=bindparam("b_seq"), last_message_at=bindparam("b_at"))
)


def _insert_messages(dialect: str) -> Any:
    """Insert new messages; a retry of one committed before (same conversation, author and
    ``client_id``) is skipped, and the ids returned tell which."""
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert_(_MESSAGES)
        .on_conflict_do_nothing(index_elements=["conversation_id", "author_id", "client_id"])
        .returning(_MESSAGES.c.id)
    )


_INSERT_MESSAGES = {dialect: _insert_messages(dialect) for dialect in ("postgresql", "sqlite")}


class RetryInBatch(Exception):
    """An optimistic batch held the retry of a message committed earlier: the numbers it gave
    out would leave a gap. The caller rolls back and writes the batch again, checking first."""


_EARLIER = select(Message).where(
    tuple_(Message.conversation_id, Message.author_id, Message.client_id).in_(
        bindparam("keys", expanding=True)
    )
)


@dataclass
class _Target:
    """One conversation of the batch, as it stands after the posts accepted so far."""

    id: str
    patient_id: str
    practitioner_id: str
    practitioner_name: str
    patient_can_write: bool | None
    rules: WriteRules | None
    latest_professional_reply_allowed: bool | None
    stored_seq: int  # the conversation's, as read
    last_seq: int  # the conversation's, counting this batch's messages
    secretaries: set[str] = field(default_factory=set)
    participants: set[str] = field(default_factory=set)
    away_exceptions: frozenset[str] = frozenset()

    @property
    def members(self) -> frozenset[str]:
        return frozenset(
            {self.patient_id, self.practitioner_id} | self.secretaries | self.participants
        )

    def decision(self, user: User, now: datetime) -> WriteDecision:
        return decide(
            user,
            self.practitioner_name,
            self.patient_can_write,
            self.rules,
            self.away_exceptions,
            self.latest_professional_reply_allowed,
            now,
        )


def _target(row: Any) -> _Target:
    rules = None
    if row.settings_of is not None:
        rules = WriteRules(row.open, row.away_from, row.away_until, row.away_message)
    return _Target(
        id=row.id,
        patient_id=row.patient_id,
        practitioner_id=row.practitioner_id,
        practitioner_name=display_name(row.role, row.first_name, row.last_name),
        patient_can_write=row.patient_can_write,
        rules=rules,
        latest_professional_reply_allowed=row.latest_reply_allowed,
        stored_seq=row.last_seq,
        last_seq=row.last_seq,
    )


def _targets(db: Session, ids: list[str]) -> dict[str, _Target]:
    rows = db.execute(_CONVERSATIONS, {"ids": ids}).all()
    targets = {row.id: _target(row) for row in rows}
    wider = [targets[row.id] for row in rows if row.has_others]
    secretaries: dict[str, set[str]] = {}
    if wider:
        bound = {
            "practitioners": list({t.practitioner_id for t in wider}),
            "ids": [t.id for t in wider],
        }
        for kind, key, user_id in db.execute(_OTHER_MEMBERS, bound).all():
            if kind == "secretary":
                secretaries.setdefault(key, set()).add(user_id)
            else:
                targets[key].participants.add(user_id)
    away = [t.practitioner_id for t in targets.values() if has_away_period(t.rules)]
    exceptions: dict[str, set[str]] = {}
    if away:
        for doctor_id, patient_id in (
            db.execute(
                select(AwayException.user_id, AwayException.patient_id).where(
                    AwayException.user_id.in_(away)
                )
            )
        ).all():
            exceptions.setdefault(doctor_id, set()).add(patient_id)
    for target in targets.values():
        practitioner_id = target.practitioner_id
        target.secretaries = secretaries.get(practitioner_id, set())
        target.away_exceptions = frozenset(exceptions.get(practitioner_id, ()))
    return targets


def _earlier_posts(db: Session, posts: Sequence[Post]) -> dict[tuple[str, str, str], Message]:
    keys = {(p.conversation_id, p.user.id, p.new.client_id) for p in posts}
    found = db.scalars(_EARLIER, {"keys": list(keys)})
    return {(m.conversation_id, m.author_id, m.client_id): m for m in found}


def _attachments(db: Session, posts: Sequence[Post]) -> dict[str, Attachment]:
    wanted = {a for p in posts for a in p.new.attachment_ids}
    if not wanted:
        return {}
    return {a.id: a for a in db.scalars(select(Attachment).where(Attachment.id.in_(wanted)))}


def _claim(user: User, ids: tuple[str, ...], found: dict[str, Attachment]) -> list[Attachment]:
    if len(ids) > limits.MESSAGE_MAX_ATTACHMENTS:
        raise InvalidInput(
            f"attachment_ids : {limits.MESSAGE_MAX_ATTACHMENTS} pièces jointes au plus par message"
        )
    claimed = []
    for attachment_id in dict.fromkeys(ids):
        attachment = found.get(attachment_id)
        if attachment is None or attachment.uploader_id != user.id:
            raise InvalidInput(f"attachment_ids : pièce jointe inconnue ({attachment_id})")
        if attachment.message_id is not None:
            raise InvalidInput(
                f"attachment_ids : la pièce jointe {attachment_id} est déjà dans un message"
            )
        claimed.append(attachment)
    return claimed


def write_posts(
    db: Session, clock: Clock, posts: Sequence[Post], *, optimistic: bool = False
) -> list[Outcome]:
    """Write the posts in ``db``'s transaction (the caller commits). Each post gets its message
    (new, or the one its ``client_id`` already made) or the error that refused it; a refused post
    writes nothing.

    ``optimistic`` skips the query for retries of messages committed before: retries are rare,
    and the insert notices them anyway, raising ``RetryInBatch`` (the caller then rolls back
    and writes the batch again without ``optimistic``)."""
    if not posts:
        return []
    targets = _targets(db, sorted({p.conversation_id for p in posts}))
    earlier = {} if optimistic else _earlier_posts(db, posts)
    attachments = _attachments(db, posts)
    now = clock.now()
    outcomes: list[Outcome | None] = [None] * len(posts)
    made: dict[tuple[str, str, str], Posted] = {}  # this batch's new messages, by retry key
    again: list[tuple[int, Message]] = []  # retries of messages committed before this batch
    messages: list[dict[str, Any]] = []
    read_marks: dict[tuple[str, str], dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    # No flush until the messages are in: the claimed attachments point at them.
    with db.no_autoflush:
        for index, post in enumerate(posts):
            try:
                outcome = _accept(post, targets, earlier, made, attachments, now)
            except AppError as exc:
                outcomes[index] = exc
                continue
            if isinstance(outcome, Message):
                again.append((index, outcome))
                continue
            outcomes[index] = outcome
            if not outcome.created:
                continue
            message = outcome.view.message
            messages.append(_row(message))
            read_marks[(message.conversation_id, message.author_id)] = {
                "conversation_id": message.conversation_id,
                "user_id": message.author_id,
                "last_read_seq": message.seq,  # writing implies having read what came before
                "read_at": now,
            }
            events.append(
                audit.row(
                    now,
                    "message.posted",
                    actor_id=post.user.id,
                    ip=post.ip,
                    resource_type="conversation",
                    resource_id=message.conversation_id,
                    details={"seq": message.seq, "attachments": len(outcome.view.attachments)},
                )
            )
        if messages:
            dialect = db.get_bind().dialect.name
            inserted = db.execute(_INSERT_MESSAGES[dialect], messages).all()
            if len(inserted) < len(messages):
                if optimistic:
                    raise RetryInBatch()
                # Checked under the lock a moment ago: only a bug gets here.
                raise RuntimeError("a message was inserted concurrently under the lock")
            db.execute(
                _ADVANCE,
                [
                    {"b_id": cid, "b_seq": t.last_seq, "b_at": now}
                    for cid, t in targets.items()
                    if t.last_seq != t.stored_seq
                ],
            )
            db.execute(read_mark_upsert(db), list(read_marks.values()))
            audit.insert_rows(db, events)
    if attachments:
        db.flush()  # the claimed attachments
    for index, earlier_message in again:
        outcomes[index] = replay(db, earlier_message)
    done = [outcome for outcome in outcomes if outcome is not None]
    assert len(done) == len(posts)
    return done


def _accept(
    post: Post,
    targets: dict[str, _Target],
    earlier: dict[tuple[str, str, str], Message],
    made: dict[tuple[str, str, str], Posted],
    attachments: dict[str, Attachment],
    now: datetime,
) -> Posted | Message:
    """Decide one post against the state left by the posts before it; a new message updates that
    state. Returns an earlier message (committed before this batch) when the post is a retry."""
    user, new = post.user, post.new
    target = targets.get(post.conversation_id)
    if target is None or not is_member(user, target, target.secretaries, target.participants):
        raise NotFound("Conversation introuvable.")
    key = (post.conversation_id, user.id, new.client_id)
    if key in earlier:
        return earlier[key]
    if key in made:
        return replace(made[key], created=False)
    if not new.body.strip() and not new.attachment_ids:
        raise InvalidInput("body : le message est vide")
    is_patient = user.role == Role.PATIENT
    if is_patient:
        decision = target.decision(user, now)
        if not decision.allowed:
            raise Forbidden(
                decision.reason or "Vous ne pouvez pas écrire dans cette conversation.",
                extra={
                    "code": decision.code,
                    "until": decision.until.isoformat() if decision.until else None,
                },
            )
    claimed = _claim(user, new.attachment_ids, attachments)
    # The seq comes from the conversation row, locked by this transaction: gap-free, since a
    # rollback gives the numbers back.
    target.last_seq += 1
    message = MessageRow(
        id=new_id(),
        conversation_id=target.id,
        seq=target.last_seq,
        author_id=user.id,
        client_id=new.client_id,
        body=new.body.strip(),
        reason=(new.reason or Reason.OTHER) if is_patient else None,
        reply_allowed=True if is_patient else new.reply_allowed,
        created_at=now,
    )
    for attachment in claimed:
        attachment.message_id = message.id
    if not is_patient:
        target.latest_professional_reply_allowed = message.reply_allowed
    posted = Posted(MessageView(message, user, claimed), created=True, members=target.members)
    made[key] = posted
    return posted


_FIELDS = [f.name for f in fields(MessageRow)]


def _row(message: Message | MessageRow) -> dict[str, Any]:
    return {name: getattr(message, name) for name in _FIELDS}


async def post_message(
    db: AsyncSession,
    services: Services,
    user: User,
    conversation_id: str,
    new: NewMessage,
    *,
    ip: str | None,
    along: Callable[[str], None] | None = None,
) -> Posted:
    """Post one message in the caller's transaction (the caller commits). A retry with the same
    ``client_id`` returns the first message.

    ``along(message_id)`` adds rows that belong with the message (a document, a payment
    request) to the same transaction: both are written, or neither."""
    (outcome,) = await db.run_sync(
        write_posts, services.clock, [Post(user, conversation_id, new, ip)]
    )
    if isinstance(outcome, AppError):
        raise outcome
    if outcome.created and along is not None:
        along(outcome.view.message.id)
    return outcome


def replay(db: Session, message: Message) -> Posted:
    """The answer to a retry of an already posted message (sync: it also runs inside a batch of
    posts; from async code, ``await db.run_sync(replay, message)``)."""
    author = db.get(User, message.author_id)
    assert author is not None
    attachments = list(
        db.scalars(
            select(Attachment)
            .where(Attachment.message_id == message.id)
            .order_by(Attachment.created_at)
        )
    )
    return Posted(MessageView(message, author, attachments), created=False)
