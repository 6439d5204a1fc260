"""Conversation list, search by patient name, membership, audit of reads."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from server.models import AuditEvent
from tests.helpers import Client, valid_rpps

MakeClient = Callable[[], Client]


async def connect(doctor: Client, patient: Client) -> str:
    sent = await patient.post("/api/contact-requests", {"practitioner_id": doctor.user["id"]})  # type: ignore[index]
    accepted = await doctor.post(f"/api/contact-requests/{sent.body['id']}/accept")
    return str(accepted.body["conversation_id"])


async def test_search_by_patient_name(doctor: Client, make_client: MakeClient) -> None:
    names = [("Éloïse", "Durand"), ("Jean", "Dupont"), ("Marie", "Lefèvre")]
    for i, (first, last) in enumerate(names):
        p = make_client()
        await p.register(email=f"p{i}@example.fr", first_name=first, last_name=last)
        await connect(doctor, p)
    everyone = (await doctor.get("/api/conversations")).body["items"]
    assert {c["patient"]["last_name"] for c in everyone} == {"Durand", "Dupont", "Lefèvre"}
    for query, expected in [
        ("du", {"Durand", "Dupont"}),
        ("lefevre", {"Lefèvre"}),
        ("ELOISE dur", {"Durand"}),
        ("zz", set()),
        ("%", set()),
    ]:
        found = (await doctor.get(f"/api/conversations?q={query}")).body["items"]
        assert {c["patient"]["last_name"] for c in found} == expected, query


async def test_members_only_and_reads_are_audited(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    conversation_id = await connect(doctor, patient)
    shown = await patient.get(f"/api/conversations/{conversation_id}")
    assert shown.status == 200 and shown.body["patient_can_write"] is None
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="Sam", last_name="Stranger")
    other_doctor = make_client()
    await other_doctor.register(
        email="o@example.fr",
        first_name="Paul",
        last_name="Roux",
        role="doctor",
        rpps=valid_rpps(11),
    )
    for outsider in (stranger, other_doctor):
        reply = await outsider.get(f"/api/conversations/{conversation_id}")
        assert reply.status == 404 and reply.body["detail"] == "Conversation introuvable."
        assert (await outsider.get("/api/conversations")).body["items"] == []
    assert (await doctor.get("/api/conversations/doesnotexist")).status == 404
    async with doctor.services.sessionmaker() as db:
        reads = list(
            await db.scalars(
                select(AuditEvent.actor_id).where(AuditEvent.action == "conversation.read")
            )
        )
    assert reads == [patient.user["id"]]  # type: ignore[index]
