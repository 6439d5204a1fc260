"""Tele-expertise requests: asked with the patient's consent and the line's questionnaire,
answered in a conversation between the requester and the line's members, with a report.

Statuses move one way: ``open`` → ``claimed`` → ``answered`` → ``closed``, or ``rejected`` from
``open``/``claimed`` (with a reason; never billable). Each change is a conditional update, so two
experts claiming at once claim it once.

The exchange is a conversation of its own (``topic`` = the request): the requester holds it as
practitioner, the line's members (or the named expert) are its participants; messages, files,
read marks, live events and unread notices are those of every conversation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.clock import PARIS
from server.conversations import model, posting
from server.conversations.policy import Away
from server.errors import Conflict, Forbidden, NotFound
from server.expertise import lines as line_rules
from server.expertise.lines import field_error
from server.models import (
    BillingProfile,
    Conversation,
    ConversationParticipant,
    ExpertiseLine,
    ExpertiseRequest,
    ExpertiseStatus,
    MessagingSettings,
    NoticeKind,
    User,
    new_id,
)
from server.notify.queue import add_notice
from server.services import Services

OPEN_STATES = (ExpertiseStatus.OPEN, ExpertiseStatus.CLAIMED)


@dataclass(frozen=True)
class PatientIdentity:
    first_name: str
    last_name: str
    birth_date: date
    nir: str | None = None


@dataclass(frozen=True)
class NewRequest:
    line_id: str | None
    expert_id: str | None
    patient: PatientIdentity
    consent: bool
    answers: dict[str, Any]
    question: str
    attachment_ids: tuple[str, ...] = ()
    mode: str = "async"
    client_id: str | None = None


@dataclass(frozen=True)
class Created:
    request: ExpertiseRequest
    posted: model.Posted
    created: bool


def _check_answers(line: ExpertiseLine, answers: dict[str, Any]) -> dict[str, Any]:
    """The questionnaire's answers: required ones given, each of its type; others dropped."""
    kept: dict[str, Any] = {}
    for item in line.questionnaire:
        key, label = str(item.get("key")), str(item.get("label") or item.get("key"))
        value = answers.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if item.get("required"):
                raise field_error(f"answers.{key}", f"répondez à « {label} »")
            continue
        kind = item.get("type", "text")
        if kind == "yes_no" and not isinstance(value, bool):
            raise field_error(f"answers.{key}", f"oui ou non pour « {label} »")
        if kind == "choice" and value not in (item.get("choices") or []):
            raise field_error(f"answers.{key}", f"une des réponses proposées pour « {label} »")
        if kind == "text" and (not isinstance(value, str) or len(value) > 2000):
            raise field_error(f"answers.{key}", "un texte de 2000 caractères au plus")
        kept[key] = value.strip() if isinstance(value, str) else value
    return kept


async def _in_perimeter(db: AsyncSession, line: ExpertiseLine, requester: User) -> None:
    if not line.perimeter:
        return
    profile = await db.get(BillingProfile, requester.id)
    postcode = profile.practice_postcode if profile else None
    if postcode is None:
        raise Forbidden(
            "Cette ligne répond aux professionnels de son territoire : indiquez le code postal "
            "de votre cabinet dans « Mon cabinet » pour lui écrire."
        )
    if not any(postcode.startswith(prefix) for prefix in line.perimeter):
        raise Forbidden(
            "Cette ligne répond aux professionnels de son territoire "
            f"({', '.join(line.perimeter)}) ; votre cabinet ({postcode}) n'en fait pas partie."
        )


def _first_message(line: ExpertiseLine | None, expert: User | None, new: NewRequest) -> str:
    p = new.patient
    lines = [
        f"Demande de téléexpertise{f' — {line.name}' if line else ''}"
        f"{f' — pour {expert.display_name}' if expert else ''}",
        f"Patient : {p.first_name} {p.last_name.upper()}, né(e) le {p.birth_date:%d/%m/%Y}"
        + (f", NIR {p.nir}" if p.nir else ""),
        "Le patient a été informé et a donné son accord.",
    ]
    if line is not None:
        labels = {
            str(i.get("key")): str(i.get("label") or i.get("key")) for i in line.questionnaire
        }
        for key, value in new.answers.items():
            shown = ("oui" if value else "non") if isinstance(value, bool) else str(value)
            lines.append(f"{labels.get(key, key)} : {shown}")
    lines += ["", new.question.strip()]
    return "\n".join(lines)


async def _existing(
    db: AsyncSession, requester: User, client_id: str | None
) -> ExpertiseRequest | None:
    if not client_id:
        return None
    return await db.scalar(
        select(ExpertiseRequest).where(
            ExpertiseRequest.requester_id == requester.id,
            ExpertiseRequest.client_id == client_id,
        )
    )


async def create_request(
    db: AsyncSession, services: Services, user: User, new: NewRequest, *, ip: str | None
) -> Created:
    line_rules.require_professional(user)
    if user.role not in line_rules.EXPERT_ROLES:
        raise Forbidden("Une demande de téléexpertise est faite par un médecin ou un infirmier.")
    if not new.consent:
        raise field_error("consent", "confirmez que le patient a été informé et a donné son accord")
    if (new.line_id is None) == (new.expert_id is None):
        raise field_error("line_id", "adressez la demande à une ligne ou à un expert")
    earlier = await _existing(db, user, new.client_id)
    if earlier is not None:
        return Created(earlier, await _replay_first(db, earlier), created=False)
    line: ExpertiseLine | None = None
    expert: User | None = None
    answers: dict[str, Any] = {}
    if new.line_id is not None:
        line = await line_rules.find_line(db, user, new.line_id)
        members = await line_rules.member_ids(db, line.id)
        if user.id in members:
            raise Forbidden("Vous faites partie de cette ligne : adressez-vous à une autre.")
        await _in_perimeter(db, line, user)
        answers = _check_answers(line, new.answers)
        delay = line.delay_hours
    else:
        expert = await db.get(User, new.expert_id)
        if (
            expert is None
            or expert.role not in line_rules.EXPERT_ROLES
            or expert.pending_approval
            or expert.id == user.id
        ):
            raise NotFound("Expert introuvable.")
        members = [expert.id]
        delay = 72
    now = services.clock.now()
    request_id = new_id()
    conversation = Conversation(
        practitioner_id=user.id,
        patient_id=user.id,
        topic=request_id,
        origin="expertise",
        patient_can_write=None,
        created_at=now,
        last_seq=0,
    )
    db.add(conversation)
    await db.flush()
    for member in members:
        db.add(
            ConversationParticipant(
                conversation_id=conversation.id, user_id=member, added_by_id=user.id, added_at=now
            )
        )
    request = ExpertiseRequest(
        id=request_id,
        line_id=line.id if line else None,
        expert_id=expert.id if expert else None,
        requester_id=user.id,
        conversation_id=conversation.id,
        client_id=new.client_id,
        patient_first_name=new.patient.first_name,
        patient_last_name=new.patient.last_name,
        patient_birth_date=new.patient.birth_date,
        patient_nir=new.patient.nir,
        consent_at=now,
        answers=answers,
        question=new.question.strip(),
        mode=new.mode,
        status=ExpertiseStatus.OPEN,
        created_at=now,
        due_at=now + timedelta(hours=delay),
    )
    db.add(request)
    await db.flush()
    posted = await posting.post_message(
        db,
        services,
        user,
        conversation.id,
        model.NewMessage(
            client_id=f"expertise:{request_id}",
            body=_first_message(line, expert, _with(new, answers) if line else new),
            attachment_ids=new.attachment_ids,
        ),
        ip=ip,
    )
    for member in await _to_notify(db, services, line, members, now):
        add_notice(
            db,
            now,
            user_id=member,
            kind=NoticeKind.EXPERTISE_REQUEST,
            subject_id=request_id,
            dedupe_key=f"expertise:{request_id}:{member}",
        )
    audit.record(
        db,
        services.clock,
        "expertise.requested",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_request",
        resource_id=request_id,
        details={"line_id": request.line_id, "expert_id": request.expert_id, "mode": new.mode},
    )
    return Created(request, posted, created=True)


def _with(new: NewRequest, answers: dict[str, Any]) -> NewRequest:
    return NewRequest(
        new.line_id,
        new.expert_id,
        new.patient,
        new.consent,
        answers,
        new.question,
        new.attachment_ids,
        new.mode,
        new.client_id,
    )


async def _replay_first(db: AsyncSession, request: ExpertiseRequest) -> model.Posted:
    from server.models import Message

    first = await db.scalar(
        select(Message)
        .where(Message.conversation_id == request.conversation_id)
        .order_by(Message.seq)
        .limit(1)
    )
    assert first is not None
    return await db.run_sync(posting.replay, first)


async def _away_now(db: AsyncSession, user_id: str, now: datetime) -> bool:
    settings = await db.get(MessagingSettings, user_id)
    if settings is None:
        return False
    return Away(settings.away_from, settings.away_until, None, frozenset()).active(now)


async def _to_notify(
    db: AsyncSession,
    services: Services,
    line: ExpertiseLine | None,
    members: list[str],
    now: datetime,
) -> list[str]:
    """The doctor of the day; if none is set, or they are away, every member who is not away
    (domain.md §5: away mode passes a member's requests to colleagues)."""
    if line is not None:
        days = await line_rules.rota(db, line.id)
        today = line_rules.WEEKDAYS[now.astimezone(PARIS).weekday()]
        on_call = days.get(today)
        if on_call is not None and not await _away_now(db, on_call, now):
            return [on_call]
    present = [m for m in members if not await _away_now(db, m, now)]
    return present or members


async def visible_request(db: AsyncSession, user: User, request_id: str) -> ExpertiseRequest:
    """The request if the user is its requester, a member of its line, its named expert or an
    added participant of its conversation; NotFound otherwise, whether it exists or not."""
    line_rules.require_professional(user)
    request = await db.get(ExpertiseRequest, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    if request.requester_id == user.id or request.expert_id == user.id:
        return request
    if request.line_id and request.line_id in await line_rules.lines_of(db, user.id):
        return request
    added = await db.get(ConversationParticipant, (request.conversation_id, user.id))
    if added is not None:
        return request
    raise NotFound("Demande introuvable.")


async def _answering(db: AsyncSession, user: User, request_id: str) -> ExpertiseRequest:
    request = await visible_request(db, user, request_id)
    experts = set(await line_rules.member_ids(db, request.line_id)) if request.line_id else set()
    if request.expert_id:
        experts.add(request.expert_id)
    if user.id not in experts:
        raise Forbidden("Seuls les experts de la ligne traitent la demande.")
    return request


async def _move(
    db: AsyncSession, request: ExpertiseRequest, allowed: tuple[str, ...], **values: Any
) -> None:
    done = await db.execute(
        update(ExpertiseRequest)
        .where(ExpertiseRequest.id == request.id, ExpertiseRequest.status.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        await db.refresh(request)
        raise Conflict(
            f"Cette demande est déjà « {STATUS_FR.get(request.status, request.status)} »."
        )
    await db.refresh(request)


STATUS_FR = {
    "open": "ouverte",
    "claimed": "prise en charge",
    "answered": "répondue",
    "rejected": "refusée",
    "closed": "clôturée",
}


async def _say(
    db: AsyncSession,
    services: Services,
    user: User,
    request: ExpertiseRequest,
    step: str,
    body: str,
    attachment_ids: tuple[str, ...] = (),
    *,
    ip: str | None,
) -> model.Posted:
    """A step of the request said in its thread, once (the client id is the step's)."""
    return await posting.post_message(
        db,
        services,
        user,
        request.conversation_id,
        model.NewMessage(
            client_id=f"expertise-{step}:{request.id}",
            body=body,
            attachment_ids=attachment_ids,
        ),
        ip=ip,
    )


async def claim(
    db: AsyncSession, services: Services, user: User, request_id: str, *, ip: str | None
) -> tuple[ExpertiseRequest, model.Posted | None]:
    """The requester is told in the thread that someone is on it (their page follows live)."""
    request = await _answering(db, user, request_id)
    if request.status == ExpertiseStatus.CLAIMED and request.claimed_by_id == user.id:
        return request, None
    now = services.clock.now()
    await _move(
        db,
        request,
        (ExpertiseStatus.OPEN,),
        status=ExpertiseStatus.CLAIMED,
        claimed_by_id=user.id,
        claimed_at=now,
    )
    audit.record(
        db,
        services.clock,
        "expertise.claimed",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_request",
        resource_id=request.id,
    )
    posted = await _say(
        db,
        services,
        user,
        request,
        "claim",
        f"Demande prise en charge par {user.display_name}.",
        ip=ip,
    )
    return request, posted


async def answer(
    db: AsyncSession,
    services: Services,
    user: User,
    request_id: str,
    body: str,
    attachment_ids: tuple[str, ...],
    *,
    ip: str | None,
) -> tuple[ExpertiseRequest, model.Posted]:
    request = await _answering(db, user, request_id)
    now = services.clock.now()
    await _move(
        db,
        request,
        OPEN_STATES,
        status=ExpertiseStatus.ANSWERED,
        answered_by_id=user.id,
        answered_at=now,
        claimed_by_id=request.claimed_by_id or user.id,
        claimed_at=request.claimed_at or now,
    )
    posted = await _say(
        db, services, user, request, "answer", f"Avis : {body.strip()}", attachment_ids, ip=ip
    )
    audit.record(
        db,
        services.clock,
        "expertise.answered",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_request",
        resource_id=request.id,
    )
    return request, posted


async def reject(
    db: AsyncSession,
    services: Services,
    user: User,
    request_id: str,
    reason: str,
    *,
    ip: str | None,
) -> tuple[ExpertiseRequest, model.Posted]:
    request = await _answering(db, user, request_id)
    if not reason.strip():
        raise field_error("reason", "dites pourquoi la demande est refusée")
    now = services.clock.now()
    await _move(
        db,
        request,
        OPEN_STATES,
        status=ExpertiseStatus.REJECTED,
        rejected_by_id=user.id,
        rejected_at=now,
        reject_reason=reason.strip(),
    )
    posted = await _say(
        db, services, user, request, "reject", f"Demande refusée : {reason.strip()}", ip=ip
    )
    audit.record(
        db,
        services.clock,
        "expertise.rejected",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_request",
        resource_id=request.id,
    )
    return request, posted


async def close(
    db: AsyncSession, services: Services, user: User, request_id: str, *, ip: str | None
) -> ExpertiseRequest:
    request = await visible_request(db, user, request_id)
    if request.requester_id != user.id:
        await _answering(db, user, request_id)
    await _move(
        db,
        request,
        (ExpertiseStatus.ANSWERED,),
        status=ExpertiseStatus.CLOSED,
        closed_at=services.clock.now(),
    )
    audit.record(
        db,
        services.clock,
        "expertise.closed",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_request",
        resource_id=request.id,
    )
    return request


async def list_requests(
    db: AsyncSession, user: User, box: str, status: str | None, now: datetime
) -> list[ExpertiseRequest]:
    line_rules.require_professional(user)
    stmt = select(ExpertiseRequest)
    if box == "sent":
        stmt = stmt.where(ExpertiseRequest.requester_id == user.id)
    else:
        mine = await line_rules.lines_of(db, user.id)
        stmt = stmt.where(
            or_(ExpertiseRequest.line_id.in_(mine), ExpertiseRequest.expert_id == user.id)
        )
    if status == "late":
        stmt = stmt.where(ExpertiseRequest.status.in_(OPEN_STATES), ExpertiseRequest.due_at < now)
    elif status == "mine":
        stmt = stmt.where(ExpertiseRequest.claimed_by_id == user.id)
    elif status:
        stmt = stmt.where(ExpertiseRequest.status == status)
    return list(await db.scalars(stmt.order_by(ExpertiseRequest.created_at.desc()).limit(500)))


async def post_report(
    db: AsyncSession, services: Services, user: User, request: ExpertiseRequest, *, ip: str | None
) -> model.Posted:
    """Draw the report of an answered request and post it in the thread (the caller commits)."""
    import asyncio

    from server.expertise import report
    from server.models import Attachment, Document, Message

    messages = list(
        await db.scalars(
            select(Message)
            .where(Message.conversation_id == request.conversation_id)
            .order_by(Message.seq)
        )
    )
    files: dict[str, list[str]] = {}
    for attachment in await db.scalars(
        select(Attachment).where(Attachment.message_id.in_([m.id for m in messages]))
    ):
        files.setdefault(attachment.message_id or "", []).append(attachment.filename)
    people: dict[str, User] = {}

    async def name(user_id: str | None) -> str:
        if user_id is None:
            return ""
        if user_id not in people:
            found = await db.get(User, user_id)
            assert found is not None
            people[user_id] = found
        return people[user_id].display_name

    line = await db.get(ExpertiseLine, request.line_id) if request.line_id else None
    labels = (
        {str(i.get("key")): str(i.get("label") or i.get("key")) for i in line.questionnaire}
        if line
        else {}
    )
    experts = tuple(
        dict.fromkeys([await name(i) for i in (request.answered_by_id, request.claimed_by_id) if i])
    )
    assert request.answered_at is not None
    exchanges = [
        report.Exchange(
            m.created_at.astimezone(PARIS),
            await name(m.author_id),
            m.body,
            tuple(files.get(m.id, [])),
        )
        for m in messages
    ]
    content = report.ReportContent(
        line=line.name if line else None,
        requester=await name(request.requester_id),
        experts=experts,
        patient=f"{request.patient_first_name} {request.patient_last_name.upper()}",
        patient_birth_date=request.patient_birth_date,
        patient_nir=request.patient_nir,
        requested_at=request.created_at.astimezone(PARIS),
        consent_at=request.consent_at.astimezone(PARIS),
        answered_at=request.answered_at.astimezone(PARIS),
        answers=tuple(
            (labels.get(k, k), ("oui" if v else "non") if isinstance(v, bool) else str(v))
            for k, v in request.answers.items()
        ),
        exchanges=tuple(exchanges),
        reference=request.id,
    )
    data = await asyncio.to_thread(report.render, content)

    async def one() -> AsyncIterator[bytes]:
        yield data

    stored = await services.attachments.save(one())
    now = services.clock.now()
    attachment = Attachment(
        uploader_id=user.id,
        storage_name=stored.name,
        size=stored.size,
        content_type=stored.content_type,
        filename=f"compte-rendu-teleexpertise-{now.astimezone(PARIS):%Y-%m-%d}.pdf",
        created_at=now,
    )
    db.add(attachment)
    await db.flush()
    document_id = new_id()

    def add_document(message_id: str) -> None:
        db.add(
            Document(
                id=document_id,
                conversation_id=request.conversation_id,
                author_id=user.id,
                kind="expertise_report",
                message_id=message_id,
                attachment_id=attachment.id,
                generated=True,
                content={"request_id": request.id},
                created_at=now,
            )
        )

    posted = await posting.post_message(
        db,
        services,
        user,
        request.conversation_id,
        model.NewMessage(
            client_id=f"expertise-report:{request.id}",
            body="📄 Compte rendu de téléexpertise",
            attachment_ids=(attachment.id,),
        ),
        ip=ip,
        along=add_document,
    )
    if posted.created:
        await db.flush()
        request.report_document_id = document_id
    return posted
