"""Invitations: the doctor's side, the link's side, validity, acceptance."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from server.clock import FakeClock
from server.models import AuditEvent, Conversation, Invitation, User
from tests.helpers import PASSWORD, Client, outbox_links, token_of, valid_rpps

MakeClient = Callable[[], Client]
INVITEE = {"first_name": "Éloïse", "last_name": "Durand", "email": "eloise@example.fr"}


async def invite(doctor: Client, **fields: str) -> dict[str, object]:
    reply = await doctor.post("/api/invitations", {**INVITEE, **fields})
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def test_email_given_goes_by_email(doctor: Client, outbox: Path, clock: FakeClock) -> None:
    body = await invite(doctor, phone="06 12 34 56 78")
    assert body["channel"] == "email" and body["status"] == "pending"
    assert body["delivery_status"] == "sent"
    assert body["phone"] == "+33612345678"
    assert datetime.fromisoformat(str(body["expires_at"])) == clock.now() + timedelta(days=15)
    emails = list(outbox.glob("*.eml"))
    assert len(emails) == 1 and not list(outbox.glob("*.json"))
    text = emails[0].read_text()
    assert "To: eloise@example.fr" in text and "Dr Claire Martin" in text
    [link] = outbox_links(outbox)
    assert link.startswith("http://teleconsult.test/i/") and len(token_of(link)) >= 43


async def test_phone_only_goes_by_sms_normalised(doctor: Client, outbox: Path) -> None:
    body = await invite(doctor, email="", phone="06 12 34 56 78")
    assert body["channel"] == "sms" and body["email"] is None
    [sms] = list(outbox.glob("*.json"))
    text = sms.read_text()
    assert '"to": "+33612345678"' in text and "Dr Claire Martin" in text
    assert len(outbox_links(outbox)) == 1


async def test_bad_contact_details_are_refused(doctor: Client, outbox: Path) -> None:
    cases = [
        ({"first_name": "A", "last_name": "B"}, "au moins l'un des deux"),
        (
            {"first_name": "A", "last_name": "B", "email": "pas-une-adresse"},
            "adresse e-mail invalide",
        ),
        ({"first_name": "A", "last_name": "B", "phone": "12"}, "téléphone"),
        ({"first_name": "", "last_name": "B", "email": "a@example.fr"}, "first_name"),
        ({"first_name": "A", "last_name": 3, "email": "a@example.fr"}, "last_name"),
    ]
    for body, expected in cases:
        reply = await doctor.post("/api/invitations", body)
        assert reply.status == 422, (body, reply)
        assert expected in reply.body["detail"], (body, reply.body)
    assert outbox_links(outbox) == []
    assert (await doctor.get("/api/invitations")).body["items"] == []


async def test_list_newest_first_with_status_and_date(doctor: Client, clock: FakeClock) -> None:
    first = await invite(doctor, email="a@example.fr")
    clock.advance(timedelta(minutes=5))
    second = await invite(doctor, email="b@example.fr")
    items = (await doctor.get("/api/invitations")).body["items"]
    assert [i["id"] for i in items] == [second["id"], first["id"]]
    assert all(i["status"] == "pending" and i["status_changed_at"] for i in items)


async def test_expires_after_fifteen_days(doctor: Client, outbox: Path, clock: FakeClock) -> None:
    body = await invite(doctor)
    token = token_of(outbox_links(outbox)[0])
    clock.advance(timedelta(days=15) - timedelta(seconds=1))
    assert (await doctor.get(f"/api/invitations/token/{token}")).body["status"] == "pending"
    clock.advance(timedelta(seconds=1))
    gone = await doctor.get(f"/api/invitations/token/{token}")
    assert gone.status == 410 and "expiré" in gone.body["detail"]
    await doctor.login()  # fifteen idle days ended the doctor's session too
    [item] = (await doctor.get("/api/invitations")).body["items"]
    assert item["status"] == "expired" and item["status_changed_at"] == body["expires_at"]
    accept = await doctor.post(f"/api/invitations/token/{token}/accept", {"password": PASSWORD})
    assert accept.status == 410
    resend = await doctor.post(f"/api/invitations/{body['id']}/resend")
    assert resend.status == 409 and "expiré" in resend.body["detail"]


async def test_public_view_of_the_link(
    doctor: Client, outbox: Path, make_client: MakeClient
) -> None:
    await invite(doctor)
    token = token_of(outbox_links(outbox)[0])
    reply = await make_client().get(f"/api/invitations/token/{token}")
    assert reply.status == 200
    assert reply.body["doctor"] == {
        "first_name": "Claire",
        "last_name": "Martin",
        "role": "doctor",
        "display_name": "Dr Claire Martin",
        "specialty": "general_practice",
    }
    assert reply.body["first_name"] == "Éloïse" and reply.body["status"] == "pending"
    unknown = await make_client().get("/api/invitations/token/not-a-real-token")
    assert unknown.status == 404 and "pas valable" in unknown.body["detail"]


async def test_accept_with_signup_opens_the_conversation(
    doctor: Client, outbox: Path, make_client: MakeClient
) -> None:
    inv = await invite(doctor)
    token = token_of(outbox_links(outbox)[0])
    patient = make_client()
    reply = await patient.post(
        f"/api/invitations/token/{token}/accept", {"password": PASSWORD, "birth_date": "1990-05-04"}
    )
    assert reply.status == 200, reply
    assert reply.body["account_created"] is True
    conversation_id = reply.body["conversation_id"]
    me = (await patient.get("/api/me")).body
    assert me["email"] == "eloise@example.fr" and me["first_name"] == "Éloïse"
    assert me["role"] == "patient" and me["birth_date"] == "1990-05-04"
    doctor_view = (await doctor.get("/api/conversations")).body["items"]
    assert [c["id"] for c in doctor_view] == [conversation_id]
    assert doctor_view[0]["patient"]["last_name"] == "Durand"
    [item] = (await doctor.get("/api/invitations")).body["items"]
    assert item["id"] == inv["id"] and item["status"] == "accepted"
    assert item["conversation_id"] == conversation_id
    patient_view = (await patient.get("/api/conversations")).body["items"]
    assert patient_view[0]["practitioner"]["last_name"] == "Martin"
    again = await patient.post(f"/api/invitations/token/{token}/accept", {})
    assert again.status == 409 and "déjà été acceptée" in again.body["detail"]
    shown = await make_client().get(f"/api/invitations/token/{token}")
    assert shown.status == 200 and shown.body["status"] == "accepted"


async def test_signed_in_patient_accepts_and_gets_the_existing_conversation(
    doctor: Client, patient: Client, outbox: Path
) -> None:
    await invite(doctor, email="first@example.fr")
    await invite(doctor, email="second@example.fr")
    first, second = (token_of(link) for link in outbox_links(outbox))
    one = await patient.post(f"/api/invitations/token/{first}/accept", {})
    two = await patient.post(f"/api/invitations/token/{second}/accept", {})
    assert one.status == two.status == 200
    assert one.body["account_created"] is False
    assert one.body["conversation_id"] == two.body["conversation_id"]
    assert len((await doctor.get("/api/conversations")).body["items"]) == 1


async def test_existing_email_must_sign_in(
    doctor: Client, patient: Client, outbox: Path, make_client: MakeClient
) -> None:
    await invite(doctor, email="eloise.durand@example.fr")
    token = token_of(outbox_links(outbox)[0])
    reply = await make_client().post(
        f"/api/invitations/token/{token}/accept", {"password": PASSWORD}
    )
    assert reply.status == 409 and "Connectez-vous" in reply.body["detail"]
    async with doctor.services.sessionmaker() as db:
        assert await db.scalar(select(func.count(User.id))) == 2
        assert await db.scalar(select(func.count(Conversation.id))) == 0
    listed = (await doctor.get("/api/invitations")).body["items"][0]
    assert listed["status"] == "pending"


async def test_sms_invitation_needs_an_email_to_create_the_account(
    doctor: Client, outbox: Path, make_client: MakeClient
) -> None:
    await invite(doctor, email="", phone="0612345678")
    token = token_of(outbox_links(outbox)[0])
    client = make_client()
    missing = await client.post(f"/api/invitations/token/{token}/accept", {"password": PASSWORD})
    assert missing.status == 422 and "email" in missing.body["detail"]
    ok = await client.post(
        f"/api/invitations/token/{token}/accept", {"password": PASSWORD, "email": "e@example.fr"}
    )
    assert ok.status == 200
    assert (await client.get("/api/me")).body["phone"] == "+33612345678"


async def test_two_simultaneous_accepts_make_one_account_and_one_conversation(
    doctor: Client, outbox: Path, make_client: MakeClient
) -> None:
    await invite(doctor)
    token = token_of(outbox_links(outbox)[0])
    a, b = make_client(), make_client()
    replies = await asyncio.gather(
        a.post(f"/api/invitations/token/{token}/accept", {"password": PASSWORD}),
        b.post(f"/api/invitations/token/{token}/accept", {"password": PASSWORD}),
    )
    assert sorted(r.status for r in replies) == [200, 409], replies
    async with doctor.services.sessionmaker() as db:
        assert await db.scalar(select(func.count(User.id)).where(User.role == "patient")) == 1
        assert await db.scalar(select(func.count(Conversation.id))) == 1


async def test_professional_cannot_accept(doctor: Client, outbox: Path) -> None:
    await invite(doctor)
    token = token_of(outbox_links(outbox)[0])
    reply = await doctor.post(f"/api/invitations/token/{token}/accept", {})
    assert reply.status == 403 and "compte patient" in reply.body["detail"]


async def test_cancel_kills_the_link(doctor: Client, outbox: Path, make_client: MakeClient) -> None:
    inv = await invite(doctor)
    token = token_of(outbox_links(outbox)[0])
    reply = await doctor.post(f"/api/invitations/{inv['id']}/cancel")
    assert reply.status == 200 and reply.body["status"] == "cancelled"
    assert (await doctor.post(f"/api/invitations/{inv['id']}/cancel")).status == 200  # idempotent
    gone = await make_client().get(f"/api/invitations/token/{token}")
    assert gone.status == 410 and "annulée" in gone.body["detail"]
    assert (await doctor.post(f"/api/invitations/{inv['id']}/resend")).status == 409
    patch = await doctor.patch(f"/api/invitations/{inv['id']}", {"email": "x@example.fr"})
    assert patch.status == 409


async def test_resend_makes_a_new_link_and_the_old_one_stops(
    doctor: Client, outbox: Path, clock: FakeClock
) -> None:
    inv = await invite(doctor)
    clock.advance(timedelta(days=10))
    await doctor.login()
    reply = await doctor.post(f"/api/invitations/{inv['id']}/resend")
    assert reply.status == 200 and reply.body["delivery_status"] == "sent"
    assert datetime.fromisoformat(reply.body["expires_at"]) == clock.now() + timedelta(days=15)
    old, new = (token_of(link) for link in outbox_links(outbox))
    assert old != new
    assert (await doctor.get(f"/api/invitations/token/{old}")).status == 404
    assert (await doctor.get(f"/api/invitations/token/{new}")).status == 200


async def test_correct_and_resend_to_the_new_address(doctor: Client, outbox: Path) -> None:
    inv = await invite(doctor, email="eloise@exemple.fr")
    reply = await doctor.patch(
        f"/api/invitations/{inv['id']}", {"email": "eloise@example.fr", "last_name": "Durant"}
    )
    assert reply.status == 200, reply
    assert reply.body["email"] == "eloise@example.fr" and reply.body["last_name"] == "Durant"
    recipients = sorted(p.read_text().split("To: ")[1].split("\n")[0] for p in outbox.glob("*.eml"))
    assert recipients == ["eloise@example.fr", "eloise@exemple.fr"]
    switch = await doctor.patch(
        f"/api/invitations/{inv['id']}", {"email": None, "phone": "0612345678"}
    )
    assert switch.status == 200 and switch.body["channel"] == "sms"
    neither = await doctor.patch(f"/api/invitations/{inv['id']}", {"phone": None})
    assert neither.status == 422
    empty = await doctor.patch(f"/api/invitations/{inv['id']}", {})
    assert empty.status == 400


async def test_another_doctors_invitation_is_not_found(
    doctor: Client, make_client: MakeClient
) -> None:
    inv = await invite(doctor)
    other = make_client()
    await other.register(
        email="other@example.fr",
        first_name="Paul",
        last_name="Roux",
        role="doctor",
        rpps=valid_rpps(2),
    )
    for reply in (
        await other.post(f"/api/invitations/{inv['id']}/resend"),
        await other.post(f"/api/invitations/{inv['id']}/cancel"),
        await other.patch(f"/api/invitations/{inv['id']}", {"first_name": "X"}),
    ):
        assert reply.status == 404 and reply.body["detail"] == "Invitation introuvable."
    assert (await other.get("/api/invitations")).body["items"] == []
    unknown = await other.post("/api/invitations/0123456789abcdef0123456789abcdef/cancel")
    assert unknown.status == 404 and unknown.body["detail"] == "Invitation introuvable."


async def test_patient_cannot_invite(patient: Client) -> None:
    reply = await patient.post("/api/invitations", INVITEE)
    assert reply.status == 403
    assert (await patient.get("/api/invitations")).status == 403


async def test_invitation_events_are_audited(
    doctor: Client, outbox: Path, make_client: MakeClient
) -> None:
    inv = await invite(doctor)
    await doctor.patch(f"/api/invitations/{inv['id']}", {"first_name": "Eloise"})
    token = token_of(outbox_links(outbox)[-1])
    await make_client().post(f"/api/invitations/token/{token}/accept", {"password": PASSWORD})
    async with doctor.services.sessionmaker() as db:
        events = list(await db.scalars(select(AuditEvent).order_by(AuditEvent.at)))
    actions = [e.action for e in events if e.resource_id == inv["id"]]
    assert actions == ["invitation.sent", "invitation.corrected", "invitation.accepted"]
    assert all(e.ip for e in events)
    assert "conversation.opened" in [e.action for e in events]


async def test_invitations_per_hour_are_limited(doctor: Client) -> None:
    for i in range(60):
        assert (
            await doctor.post("/api/invitations", {**INVITEE, "email": f"p{i}@example.fr"})
        ).status == 201
    reply = await doctor.post("/api/invitations", INVITEE)
    assert reply.status == 429 and int(reply.headers["Retry-After"]) > 0
    async with doctor.services.sessionmaker() as db:
        assert await db.scalar(select(func.count(Invitation.id))) == 60
