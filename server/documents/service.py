"""Documents handed over in a conversation: an uploaded PDF or photo, or a prescription or
sick-leave note generated from the doctor's lines. Sent once, never changed: a correction is a new
document that names the one it replaces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.billing import tariffs
from server.clock import PARIS
from server.conversations import model, posting
from server.conversations.service import ConversationView, find_conversation, visible_to
from server.documents import pdf
from server.errors import Forbidden, InvalidInput
from server.models import (
    Attachment,
    Conversation,
    Document,
    Message,
    Practice,
    Role,
    User,
    new_id,
)
from server.services import Services

KINDS = ("prescription", "sick_leave", "other")
MAX_LINES = 40
MAX_SICK_LEAVE_DAYS = 365

SPECIALTY_FR = {
    "general_practice": "Médecin généraliste",
    "pediatrics": "Pédiatre",
    "gynecology": "Gynécologue",
    "ophthalmology": "Ophtalmologue",
    "psychiatry": "Psychiatre",
    "dermatology": "Dermatologue",
    "cardiology": "Cardiologue",
    "stomatology": "Stomatologue",
    "oral_maxillofacial_surgery": "Chirurgien oral et maxillo-facial",
}


@dataclass(frozen=True)
class NewDocument:
    kind: str
    lines: tuple[str, ...] = ()
    attachment_id: str | None = None
    title: str | None = None
    sick_leave_days: int | None = None
    sick_leave_from: date | None = None
    # The prescriber confirms being the patient's treating doctor (sick leave over 3 days).
    treating_doctor: bool = False
    replaces_id: str | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class Sent:
    document: Document
    posted: model.Posted


def _fr(day: date) -> str:
    return day.strftime("%d/%m/%Y")


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _check_sick_leave(new: NewDocument, today: date) -> tuple[date, date]:
    if new.sick_leave_days is None:
        raise InvalidInput("sick_leave_days : indiquez la durée de l'arrêt en jours")
    if not 1 <= new.sick_leave_days <= MAX_SICK_LEAVE_DAYS:
        raise InvalidInput(f"sick_leave_days : entre 1 et {MAX_SICK_LEAVE_DAYS} jours")
    start = new.sick_leave_from or today
    if abs((start - today).days) > 7:
        raise InvalidInput(
            "sick_leave_from : un arrêt prescrit en téléconsultation commence à 7 jours près "
            "de la date du jour"
        )
    limited = today >= tariffs.SICK_LEAVE_LIMIT_SINCE
    if limited and new.sick_leave_days > tariffs.SICK_LEAVE_MAX_DAYS and not new.treating_doctor:
        raise InvalidInput(
            f"Un arrêt de travail prescrit en téléconsultation est limité à "
            f"{tariffs.SICK_LEAVE_MAX_DAYS} jours (initial ou prolongation), sauf par le "
            "médecin traitant du patient : réduisez la durée, ou confirmez que vous êtes son "
            "médecin traitant (treating_doctor).",
            extra={"code": "sick_leave_limit", "max_days": tariffs.SICK_LEAVE_MAX_DAYS},
        )
    return start, start + timedelta(days=new.sick_leave_days - 1)


def _lines(new: NewDocument) -> tuple[str, ...]:
    lines = tuple(line.strip() for line in new.lines if line.strip())
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"lines : {MAX_LINES} lignes au plus")
    return lines


async def _author(db: AsyncSession, user: User) -> pdf.Author:
    practice = await db.get(Practice, user.practice_id) if user.practice_id else None
    specialty = SPECIALTY_FR.get(user.specialty or "") if user.role == Role.DOCTOR else None
    if user.role == Role.NURSE:
        specialty = "Infirmier(ère) diplômé(e) d'État"
    return pdf.Author(
        name=user.display_name,
        rpps=user.rpps,
        specialty=specialty,
        practice_name=practice.name if practice else None,
        practice_address=practice.address if practice else None,
    )


async def _existing(
    db: AsyncSession, user: User, conversation_id: str, client_id: str
) -> Sent | None:
    message = await db.scalar(
        select(Message).where(
            Message.conversation_id == conversation_id,
            Message.author_id == user.id,
            Message.client_id == client_id,
        )
    )
    if message is None:
        return None
    document = await db.scalar(select(Document).where(Document.message_id == message.id))
    if document is None:
        raise InvalidInput("client_id : déjà utilisé pour un message qui n'est pas un document")
    posted = await db.run_sync(posting.replay, message)
    return Sent(document, posted)


@dataclass(frozen=True)
class Draft:
    """A generated document's content, checked, before it is drawn."""

    content: pdf.DocumentContent
    start: date | None
    until: date | None


async def _draft(
    db: AsyncSession,
    user: User,
    view: ConversationView,
    new: NewDocument,
    replaced: Document | None,
    local_now: datetime,
    title: str,
    reference: str,
) -> Draft:
    """What a doctor's generated document says: the same for its preview and for what is sent."""
    if user.role != Role.DOCTOR and new.kind != "other":
        raise Forbidden("Seul un médecin établit une ordonnance ou un arrêt de travail.")
    if user.role == Role.SECRETARY:
        raise Forbidden("Un secrétariat envoie des documents déjà établis (attachment_id).")
    lines = _lines(new)
    start = until = None
    if new.kind == "sick_leave":
        start, until = _check_sick_leave(new, local_now.date())
    elif not lines:
        raise InvalidInput("lines : écrivez au moins une ligne (ou joignez un fichier)")
    patient = view.patient
    author = await _author(db, user)
    replaces_text = None
    if replaced is not None:
        replaces_text = f"{pdf.TITLES.get(replaced.kind, 'document')} du " + _fr(
            replaced.created_at.astimezone(PARIS).date()
        )
    content = pdf.DocumentContent(
        kind=new.kind,
        author=author,
        patient=pdf.Person(f"{patient.first_name} {patient.last_name.upper()}", patient.birth_date),
        issued_at=local_now,
        lines=lines,
        title=title,
        sick_leave_from=start,
        sick_leave_until=until,
        replaces=replaces_text,
        reference=reference,
    )
    return Draft(content, start, until)


async def _replaced(
    db: AsyncSession, conversation_id: str, replaces_id: str | None
) -> Document | None:
    if not replaces_id:
        return None
    replaced = await db.get(Document, replaces_id)
    if replaced is None or replaced.conversation_id != conversation_id:
        raise InvalidInput("replaces_id : document inconnu dans cette conversation")
    return replaced


async def preview_document(
    db: AsyncSession, services: Services, user: User, conversation_id: str, new: NewDocument
) -> bytes:
    """The PDF a doctor is about to send, drawn the same way, marked as a preview; nothing is
    stored or sent (issue 26, item 10: read the prescription before the patient gets it)."""
    if new.kind not in ("prescription", "sick_leave") or new.attachment_id is not None:
        raise InvalidInput("kind : l'aperçu concerne une ordonnance ou un arrêt de travail")
    if not user.role_enum.is_professional:
        raise Forbidden("Seuls les professionnels établissent des documents.")
    view = await find_conversation(db, user, conversation_id)
    replaced = await _replaced(db, conversation_id, new.replaces_id)
    local_now = services.clock.now().astimezone(PARIS)
    title = new.title.strip() if new.title and new.title.strip() else pdf.TITLES[new.kind]
    draft = await _draft(
        db, user, view, new, replaced, local_now, title, "APERÇU — document non envoyé"
    )
    await db.commit()
    return await asyncio.to_thread(pdf.render, draft.content)


async def send_document(
    db: AsyncSession,
    services: Services,
    user: User,
    conversation_id: str,
    new: NewDocument,
    *,
    ip: str | None,
) -> Sent:
    if new.kind not in KINDS:
        raise InvalidInput(
            f"kind : « prescription », « sick_leave » ou « other », pas {new.kind!r}"
        )
    if not user.role_enum.is_professional:
        raise Forbidden(
            "Seuls les professionnels envoient des documents ; joignez votre fichier à un message."
        )
    view = await find_conversation(db, user, conversation_id)
    if new.client_id:
        earlier = await _existing(db, user, conversation_id, new.client_id)
        if earlier is not None:
            return earlier
    replaced = await _replaced(db, conversation_id, new.replaces_id)
    now = services.clock.now()
    local_now = now.astimezone(PARIS)
    title = new.title.strip() if new.title and new.title.strip() else pdf.TITLES[new.kind]
    document_id = new_id()
    generated = new.attachment_id is None
    content: dict[str, object] | None = None
    attachment_ids: tuple[str, ...]
    if generated:
        draft = await _draft(db, user, view, new, replaced, local_now, title, document_id)
        lines, start, until = draft.content.lines, draft.start, draft.until
        # End the read transaction before the PDF is drawn and stored: on SQLite every
        # transaction holds the write lock, and nobody should wait for a drawing.
        await db.commit()
        data = await asyncio.to_thread(pdf.render, draft.content)
        stored = await services.attachments.save(_one_chunk(data))
        slug = {"prescription": "ordonnance", "sick_leave": "arret-de-travail"}.get(
            new.kind, "document"
        )
        attachment = Attachment(
            uploader_id=user.id,
            storage_name=stored.name,
            size=stored.size,
            content_type=stored.content_type,
            filename=f"{slug}-{local_now:%Y-%m-%d}.pdf",
            created_at=now,
        )
        db.add(attachment)
        await db.flush()
        attachment_ids = (attachment.id,)
        content = {"lines": list(lines), "title": title}
        if start and until:
            content |= {"sick_leave_from": start.isoformat(), "sick_leave_until": until.isoformat()}
    else:
        assert new.attachment_id is not None
        attachment_ids = (new.attachment_id,)
    body = f"📄 {title} du {_fr(local_now.date())}"
    if replaced is not None:
        body += " — corrige et remplace le document du " + _fr(
            replaced.created_at.astimezone(PARIS).date()
        )
    holder: list[Document] = []

    def add_document(message_id: str) -> None:
        document = Document(
            id=document_id,
            conversation_id=conversation_id,
            author_id=user.id,
            kind=new.kind,
            message_id=message_id,
            attachment_id=attachment_ids[0],
            replaces_id=replaced.id if replaced else None,
            generated=generated,
            content=content,
            created_at=now,
        )
        db.add(document)
        holder.append(document)
        audit.record(
            db,
            services.clock,
            "document.sent",
            actor_id=user.id,
            ip=ip,
            resource_type="conversation",
            resource_id=conversation_id,
            details={"document_id": document_id, "kind": new.kind, "generated": generated},
        )

    posted = await posting.post_message(
        db,
        services,
        user,
        conversation_id,
        model.NewMessage(
            client_id=new.client_id or f"document:{document_id}",
            body=body,
            attachment_ids=attachment_ids,
        ),
        ip=ip,
        along=add_document,
    )
    await db.commit()
    if not holder:  # a concurrent retry with the same client_id won
        document = await db.scalar(
            select(Document).where(Document.message_id == posted.view.message.id)
        )
        assert document is not None
        return Sent(document, posted)
    return Sent(holder[0], posted)


async def list_documents(db: AsyncSession, user: User, conversation_id: str) -> list[Document]:
    await find_conversation(db, user, conversation_id)
    return list(
        await db.scalars(
            select(Document)
            .where(Document.conversation_id == conversation_id)
            .order_by(Document.created_at.desc())
        )
    )


async def documents_of(
    db: AsyncSession, user: User, limit: int = 200
) -> list[tuple[Document, User, str]]:
    """Every document of every conversation the user is a member of, newest first, with its
    author and file name: a patient finds an ordonnance without scrolling a thread."""
    rows = await db.execute(
        select(Document, User, Attachment.filename)
        .join(Conversation, Conversation.id == Document.conversation_id)
        .join(User, User.id == Document.author_id)
        .join(Attachment, Attachment.id == Document.attachment_id)
        .where(visible_to(user))
        .order_by(Document.created_at.desc())
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in rows]
