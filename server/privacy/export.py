"""Everything the install holds about a patient, as one ZIP archive (RGPD art. 15, right of
access, and art. 20, portability): the account, each conversation with its messages, every file
of those conversations (decrypted), the calls' records, payment requests and billing records
about them. JSON for machines, names and dates a person can read, a README in French.

The archive is written as it is sent (``ZipFile`` over a sink the response drains): files are
decrypted chunk by chunk and never lie in clear on the server's disk, nor whole in memory.
Only the patient's own conversations are read: nothing of another patient can enter it.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.billing.export import patient_of, record_json
from server.clock import PARIS
from server.http.serialize import iso, user_json
from server.models import (
    Attachment,
    BillingRecord,
    Call,
    CallEvent,
    CallPeer,
    Conversation,
    Document,
    Message,
    NotificationSettings,
    PaymentRequest,
    User,
)
from server.storage import AttachmentStore, FileMissing

README = """Vos données — Téléconsult
=========================

Cette archive contient tout ce que ce service conserve à votre sujet, à la date indiquée dans
compte.json (« exporte_le ») :

- compte.json : votre compte (identité, coordonnées, réglages de notification) ;
- conversations/ : chaque conversation avec vos soignants, message par message ;
- fichiers/ : les pièces jointes et documents (ordonnances, arrêts de travail…) de ces
  conversations, tels qu'ils ont été envoyés ;
- appels.json : vos consultations vidéo (dates, durées, qui était présent). Les appels ne sont
  jamais enregistrés : il n'y a ni image ni son ;
- paiements.json : les demandes de paiement qui vous ont été adressées ;
- facturation.json : les cotations Assurance Maladie de vos téléconsultations.

Les fichiers .json se lisent avec un éditeur de texte ; ils peuvent être repris par un autre
service (droit à la portabilité). Pour toute question, adressez-vous à votre praticien.
"""


class _Sink:
    """What ``ZipFile`` writes into; the response takes it away after each piece (no ``tell``:
    ZipFile then writes a streamable archive)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _fr(at: datetime | None) -> str | None:
    return at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if at else None


def _name(user: User | None) -> str | None:
    return user.display_name if user else None


@dataclass
class Archive:
    """What goes in the archive, read from the database before anything is sent."""

    subject: User
    documents: dict[str, Any] = field(default_factory=dict)  # path -> JSON
    files: list[tuple[str, Attachment]] = field(default_factory=list)  # (path, attachment)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:80]


async def gather(db: AsyncSession, subject: User, now: datetime) -> Archive:
    archive = Archive(subject)
    people: dict[str, User] = {subject.id: subject}

    async def person(user_id: str | None) -> User | None:
        if user_id is None:
            return None
        if user_id not in people:
            found = await db.get(User, user_id)
            if found is None:
                return None
            people[user_id] = found
        return people[user_id]

    notifications = await db.get(NotificationSettings, subject.id)
    archive.documents["compte.json"] = {
        "exporte_le": _fr(now),
        "compte": {
            **user_json(subject),
            "privacy_accepted_at": iso(subject.privacy_accepted_at),
        },
        "notifications": {
            "email": notifications.email,
            "sms": notifications.sms,
            "push": notifications.push,
        }
        if notifications
        else None,
    }

    conversations = list(
        await db.scalars(
            select(Conversation)
            .where(Conversation.patient_id == subject.id)
            .order_by(Conversation.created_at)
        )
    )
    attachments_seen: set[str] = set()
    for number, conversation in enumerate(conversations, start=1):
        practitioner = await person(conversation.practitioner_id)
        messages = list(
            await db.scalars(
                select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.seq)
            )
        )
        by_message: dict[str, list[Attachment]] = {}
        if messages:
            for attachment in await db.scalars(
                select(Attachment).where(Attachment.message_id.in_([m.id for m in messages]))
            ):
                by_message.setdefault(attachment.message_id or "", []).append(attachment)
        listed = []
        for message in messages:
            files = []
            for attachment in by_message.get(message.id, []):
                path = f"fichiers/{attachment.id[:8]}-{_safe(attachment.filename)}"
                files.append(path)
                if attachment.id not in attachments_seen:
                    attachments_seen.add(attachment.id)
                    archive.files.append((path, attachment))
            listed.append(
                {
                    "date": _fr(message.created_at),
                    "at": iso(message.created_at),
                    "de": _name(await person(message.author_id)),
                    "texte": message.body,
                    "fichiers": files,
                }
            )
        documents = list(
            await db.scalars(
                select(Document)
                .where(Document.conversation_id == conversation.id)
                .order_by(Document.created_at)
            )
        )
        folder = f"conversations/{number:02d}-{_safe(_name(practitioner) or 'praticien')}.json"
        archive.documents[folder] = {
            "avec": _name(practitioner),
            "depuis": _fr(conversation.created_at),
            "messages": listed,
            "documents": [
                {
                    "type": d.kind,
                    "date": _fr(d.created_at),
                    "contenu": d.content,
                    "remplace": d.replaces_id,
                }
                for d in documents
            ],
        }

    # Uploads of the patient's own not (yet) posted.
    for attachment in await db.scalars(
        select(Attachment).where(
            Attachment.uploader_id == subject.id, Attachment.message_id.is_(None)
        )
    ):
        path = f"fichiers/non-envoyes/{attachment.id[:8]}-{_safe(attachment.filename)}"
        archive.files.append((path, attachment))

    conversation_ids = [c.id for c in conversations]
    calls = (
        list(
            await db.scalars(
                select(Call)
                .where(Call.conversation_id.in_(conversation_ids))
                .order_by(Call.created_at)
            )
        )
        if conversation_ids
        else []
    )
    call_list = []
    for call in calls:
        peers = list(await db.scalars(select(CallPeer).where(CallPeer.call_id == call.id)))
        timeline = list(
            await db.scalars(
                select(CallEvent)
                .where(CallEvent.call_id == call.id, CallEvent.kind != "stats")
                .order_by(CallEvent.at)
            )
        )
        call_list.append(
            {
                "debut": _fr(call.created_at),
                "fin": _fr(call.ended_at),
                "duree_minutes": round((call.ended_at - call.created_at).total_seconds() / 60)
                if call.ended_at
                else None,
                "participants": [
                    {
                        "nom": _name(await person(p.user_id)),
                        "arrive": _fr(p.joined_at),
                        "parti": _fr(p.left_at),
                    }
                    for p in peers
                ],
                "evenements": [
                    {"date": _fr(e.at), "quoi": e.kind, "qui": _name(await person(e.user_id))}
                    for e in timeline
                ],
            }
        )
    archive.documents["appels.json"] = call_list

    payments = list(
        await db.scalars(
            select(PaymentRequest)
            .where(PaymentRequest.patient_id == subject.id)
            .order_by(PaymentRequest.created_at)
        )
    )
    archive.documents["paiements.json"] = [
        {
            "demande_par": _name(await person(p.payee_id)),
            "montant_euros": f"{p.amount_cents // 100},{p.amount_cents % 100:02d}",
            "motif": p.label,
            "statut": p.status,
            "demande_le": _fr(p.created_at),
            "paye_le": _fr(p.paid_at),
            "moyen": p.paid_method,
        }
        for p in payments
    ]
    records = list(
        await db.scalars(
            select(BillingRecord)
            .where(BillingRecord.patient_id == subject.id)
            .order_by(BillingRecord.act_date)
        )
    )
    billing = []
    for record in records:
        professional = await person(record.professional_id)
        if professional is not None:
            billing.append(record_json(record, professional, patient_of(record, subject)))
    archive.documents["facturation.json"] = billing
    return archive


async def stream(
    archive: Archive,
    store: AttachmentStore,
    send: Callable[[bytes], Awaitable[None]],
) -> int:
    """Write the archive through ``send``; returns the number of files included."""
    sink = _Sink()
    included = 0
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("LISEZMOI.txt", README)
        for path, body in archive.documents.items():
            zf.writestr(path, json.dumps(body, ensure_ascii=False, indent=2))
            await send(sink.take())
        for path, attachment in archive.files:
            if attachment.storage_name is None:
                continue
            pieces = store.chunks(attachment.storage_name)
            try:
                first = await anext(pieces)
            except FileMissing:
                continue
            stamp = attachment.created_at.astimezone(PARIS).timetuple()[:6]
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED  # PDF and photos are compressed already
            with zf.open(info, "w", force_zip64=True) as member:
                member.write(first)
                async for piece in pieces:
                    member.write(piece)
                    await send(sink.take())
            included += 1
            await send(sink.take())
    await send(sink.take())
    return included
