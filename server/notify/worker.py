"""Sending queued notices: the channels each one takes, retries, and what became of it.

A notice is re-examined when it leaves, not when it was queued: a call that ended, a message
read meanwhile, a person now on the page — nothing is sent. Channels follow the person's
settings (``preferences``); quiet hours hold back everything but a call's join link, which the
patient is waiting for. Several processes may run the worker: a conditional update claims each
notice once, and a claim left by a dead worker lapses.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import limits
from server.models import (
    Call,
    CallStatus,
    ContactRequest,
    ContactRequestStatus,
    EmailVerification,
    ExpertiseLine,
    ExpertiseRequest,
    ExpertiseStatus,
    Message,
    Notice,
    NoticeKind,
    NoticeStatus,
    PasswordReset,
    PushSubscription,
    ReadMark,
    Role,
    UnreadNotice,
    User,
)
from server.notify import texts
from server.notify.preferences import Preferences, preferences_of, quiet_until
from server.outbound.push import Endpoint, Push, SubscriptionGone
from server.outbound.senders import DeliveryError, Email, Sms
from server.services import Services
from server.tokens import new_token, token_hash

log = logging.getLogger("teleconsult.notify")

_CLAIMABLE = (NoticeStatus.QUEUED, NoticeStatus.RETRYING)


def code_hash(secret_key: str, reset_id: str, code: str) -> str:
    """An SMS code has a million values: keyed with the server's secret, a leaked database
    does not give it away by trying them all."""
    return hmac.new(secret_key.encode(), f"{reset_id}:{code}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Plan:
    email: Email | None = None
    sms: Sms | None = None
    push: Push | None = None
    endpoints: list[Endpoint] = field(default_factory=list)


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Postpone:
    until: datetime


def _due_condition(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Notice.status.in_(_CLAIMABLE), Notice.next_attempt_at <= now),
        and_(Notice.status == NoticeStatus.SENDING, Notice.claimed_until < now),
    )


async def _endpoints(db: AsyncSession, user_id: str) -> list[Endpoint]:
    rows = await db.scalars(select(PushSubscription).where(PushSubscription.user_id == user_id))
    return [Endpoint(row.endpoint, row.p256dh, row.auth) for row in rows]


async def _channels(
    db: AsyncSession, user: User, prefs: Preferences, words: texts.Words, *, sms_first: bool
) -> Plan:
    """Push wherever the person subscribed; then one message: SMS first for a call (a phone
    rings), email first otherwise (an SMS costs the practice and interrupts)."""
    plan = Plan()
    if prefs.push:
        plan.endpoints = await _endpoints(db, user.id)
        if plan.endpoints:
            plan.push = words.push()
    can_sms = prefs.sms and bool(user.phone)
    if sms_first and can_sms:
        assert user.phone is not None
        plan.sms = words.sms_to(user.phone)
    elif prefs.email:
        plan.email = words.email(user.email, texts.greeting(user.first_name))
    elif can_sms and plan.push is None:
        assert user.phone is not None
        plan.sms = words.sms_to(user.phone)
    return plan


def _home(services: Services, user: User, conversation_id: str | None = None) -> str:
    page = "/patient" if user.role == Role.PATIENT else "/pro"
    anchor = f"#c={conversation_id}" if conversation_id else ""
    return f"{services.public_url}{page}{anchor}"


async def _plan(
    db: AsyncSession, services: Services, notice: Notice, now: datetime
) -> Plan | Skip | Postpone:
    user = await db.get(User, notice.user_id) if notice.user_id else None
    if user is None or not user.is_active:
        return Skip("no account")
    kind = NoticeKind(notice.kind)
    assert notice.subject_id is not None
    if kind == NoticeKind.PASSWORD_RESET:
        return await _password_reset(db, services, notice.subject_id, user, now)
    if kind == NoticeKind.EMAIL_VERIFICATION:
        return await _email_verification(db, services, notice.subject_id, user, now)
    prefs = await preferences_of(db, user.id)
    if kind == NoticeKind.TEST:
        words = texts.test_notice(_home(services, user))
        plan = await _channels(db, user, prefs, words, sms_first=False)
        if prefs.sms and user.phone and plan.sms is None:
            plan.sms = words.sms_to(user.phone)
        return plan
    if kind != NoticeKind.CALL_STARTED:
        later = quiet_until(prefs, now)
        if later is not None:
            return Postpone(later)
    if user.id in await services.events.online([user.id]):
        return Skip("on the page")
    if kind == NoticeKind.CALL_STARTED:
        call = await db.get(Call, notice.subject_id)
        if call is None or call.status == CallStatus.ENDED:
            return Skip("call ended")
        caller = await db.get(User, call.created_by_id)
        assert caller is not None
        words = texts.call_started(
            caller.display_name, f"{services.public_url}/c/{call.id}", call.id
        )
        return await _channels(db, user, prefs, words, sms_first=True)
    if kind == NoticeKind.CONTACT_REQUEST:
        request = await db.get(ContactRequest, notice.subject_id)
        if request is None or request.status != ContactRequestStatus.PENDING:
            return Skip("request answered")
        words = texts.contact_request(_home(services, user))
        return await _channels(db, user, prefs, words, sms_first=False)
    if kind in EXPERTISE_NOTICES:
        return await _expertise(db, services, kind, notice.subject_id, user, prefs)
    return await _unread(db, services, notice.subject_id, user, prefs)


EXPERTISE_NOTICES = {
    NoticeKind.EXPERTISE_REQUEST: texts.expertise_request,
    NoticeKind.EXPERTISE_LATE: texts.expertise_late,
    NoticeKind.EXPERTISE_LATE_REQUESTER: texts.expertise_late_requester,
}


async def _expertise(
    db: AsyncSession,
    services: Services,
    kind: NoticeKind,
    request_id: str,
    user: User,
    prefs: Preferences,
) -> Plan | Skip:
    """A request still waiting for what the notice asks (a new one, a late one)."""
    request = await db.get(ExpertiseRequest, request_id)
    if request is None or request.status not in (ExpertiseStatus.OPEN, ExpertiseStatus.CLAIMED):
        return Skip("request answered")
    if kind == NoticeKind.EXPERTISE_REQUEST and request.status != ExpertiseStatus.OPEN:
        return Skip("request claimed")
    line = await db.get(ExpertiseLine, request.line_id) if request.line_id else None
    words = EXPERTISE_NOTICES[kind](
        line.name if line else None, f"{services.public_url}/expertise#r={request.id}"
    )
    return await _channels(db, user, prefs, words, sms_first=False)


async def _unread(
    db: AsyncSession, services: Services, conversation_id: str, user: User, prefs: Preferences
) -> Plan | Skip:
    told = await db.get(UnreadNotice, (conversation_id, user.id))
    read = await db.get(ReadMark, (conversation_id, user.id))
    if told is None or (read is not None and read.last_read_seq >= told.notified_seq):
        return Skip("read")
    author_row = (
        await db.execute(
            select(User.role, User.first_name, User.last_name)
            .join(Message, Message.author_id == User.id)
            .where(
                Message.conversation_id == conversation_id,
                Message.seq <= told.notified_seq,
                Message.author_id != user.id,
            )
            .order_by(Message.seq.desc())
            .limit(1)
        )
    ).first()
    author = None
    if author_row is not None and Role(author_row.role).is_professional:
        prefix = "Dr " if author_row.role == Role.DOCTOR else ""
        author = f"{prefix}{author_row.first_name} {author_row.last_name}"
    words = texts.unread(author, _home(services, user, conversation_id), conversation_id)
    return await _channels(db, user, prefs, words, sms_first=False)


async def _password_reset(
    db: AsyncSession, services: Services, reset_id: str, user: User, now: datetime
) -> Plan | Skip:
    """A fresh secret for each attempt; only its hash stays (an unsent message's link or code
    is worth nothing to whoever reads the database)."""
    reset = await db.get(PasswordReset, reset_id)
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        return Skip("reset used or expired")
    if reset.channel == "sms":
        if not user.phone:
            return Skip("no phone")
        code = f"{secrets.randbelow(1_000_000):06d}"
        reset.secret_hash = code_hash(services.settings.secret_key, reset.id, code)
        return Plan(sms=texts.password_code_sms(user.phone, code))
    token = new_token()
    reset.secret_hash = token_hash(token)
    words = texts.password_link(f"{services.public_url}/reset/{token}")
    return Plan(email=words.email(user.email, texts.greeting(user.first_name)))


async def _email_verification(
    db: AsyncSession, services: Services, verification_id: str, user: User, now: datetime
) -> Plan | Skip:
    verification = await db.get(EmailVerification, verification_id)
    if verification is None or verification.used_at is not None or verification.expires_at <= now:
        return Skip("link used or expired")
    if user.email_verified_at is not None or user.email != verification.email:
        return Skip("address already confirmed or changed")
    token = new_token()
    verification.secret_hash = token_hash(token)
    words = texts.email_confirmation(f"{services.public_url}/verify/{token}")
    return Plan(email=words.email(user.email, texts.greeting(user.first_name)))


async def _send(services: Services, plan: Plan, done: set[str]) -> tuple[set[str], list[str]]:
    """Each channel not yet done; returns the channels that carried it and the errors."""
    sent: set[str] = set()
    errors: list[str] = []
    if plan.email is not None and "email" not in done:
        try:
            await services.email.send(plan.email)
            sent.add("email")
        except DeliveryError as exc:
            errors.append(f"email: {exc}")
    if plan.sms is not None and "sms" not in done:
        try:
            await services.sms.send(plan.sms)
            sent.add("sms")
        except DeliveryError as exc:
            errors.append(f"sms: {exc}")
    if plan.push is not None and "push" not in done:
        gone: list[str] = []
        pushed = False
        for endpoint in plan.endpoints:
            try:
                await services.push.send(endpoint, plan.push)
                pushed = True
            except SubscriptionGone:
                gone.append(endpoint.url)
            except DeliveryError as exc:
                errors.append(f"push: {exc}")
        if gone:
            async with services.sessionmaker() as db:
                await db.execute(
                    delete(PushSubscription).where(PushSubscription.endpoint.in_(gone))
                )
                await db.commit()
        if pushed:
            sent.add("push")
    return sent, errors


async def send_notice(services: Services, notice_id: str) -> NoticeStatus | None:
    """One attempt if the notice is due and nobody else holds it; its new status (None when
    there was nothing to do)."""
    now = services.clock.now()
    async with services.sessionmaker() as db:
        claimed = await db.execute(
            update(Notice)
            .where(Notice.id == notice_id, _due_condition(now))
            .values(
                status=NoticeStatus.SENDING,
                claimed_until=now + limits.DELIVERY_CLAIM_TIMEOUT,
                attempts=Notice.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await db.rollback()
            return None
        notice = await db.get(Notice, notice_id)
        assert notice is not None
        outcome = await _plan(db, services, notice, now)
        if isinstance(outcome, Skip | Postpone):
            notice.claimed_until = None
            if isinstance(outcome, Skip):
                notice.status = NoticeStatus.SKIPPED
                notice.last_error = outcome.reason
            else:
                notice.status = NoticeStatus.QUEUED
                notice.attempts -= 1  # waiting for the morning is not a failed attempt
                notice.next_attempt_at = outcome.until
            await db.commit()
            return NoticeStatus(notice.status)
        done = {c for c in notice.channels_sent.split(",") if c}
        await db.commit()

    sent, errors = await _send(services, outcome, done)

    finished = services.clock.now()
    async with services.sessionmaker() as db:
        fresh = await db.get(Notice, notice_id)
        assert fresh is not None
        done |= sent
        fresh.channels_sent = ",".join(sorted(done))
        fresh.claimed_until = None
        if not errors:
            fresh.status = NoticeStatus.SENT if done else NoticeStatus.SKIPPED
            fresh.last_error = None if done else "no channel"
            fresh.sent_at = finished if done else None
        else:
            fresh.last_error = "; ".join(errors)[:1000]
            retries = limits.DELIVERY_RETRY_DELAYS
            if fresh.attempts <= len(retries):
                fresh.status = NoticeStatus.RETRYING
                fresh.next_attempt_at = finished + retries[fresh.attempts - 1]
            else:
                fresh.status = NoticeStatus.SENT if done else NoticeStatus.FAILED
            log.warning(
                "notice %s (%s) attempt %d: %s", notice_id, fresh.kind, fresh.attempts, errors
            )
        if sent and fresh.sent_at is None:
            fresh.sent_at = finished
        await db.commit()
        return NoticeStatus(fresh.status)


async def send_due(services: Services, batch: int = 50) -> int:
    """Attempt every notice that is due; return how many attempts were made."""
    now = services.clock.now()
    async with services.sessionmaker() as db:
        ids = list(
            await db.scalars(
                select(Notice.id)
                .where(_due_condition(now))
                .order_by(Notice.next_attempt_at)
                .limit(batch)
            )
        )
    done = 0
    for notice_id in ids:
        if await send_notice(services, notice_id) is not None:
            done += 1
    return done
