"""Practitioner search and connection requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from server.clock import FakeClock
from tests.helpers import Client, valid_rpps

MakeClient = Callable[[], Client]


async def new_patient(make_client: MakeClient, n: int) -> Client:
    client = make_client()
    await client.register(email=f"p{n}@example.fr", first_name="Patient", last_name=f"N{n}")
    return client


async def test_search_is_accent_and_case_insensitive(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    nurse = make_client()
    await nurse.register(
        email="n@example.fr",
        first_name="Hélène",
        last_name="Léger",
        role="nurse",
        rpps=valid_rpps(9),
    )
    found = (await patient.get("/api/practitioners?q=HELENE leg")).body["items"]
    assert [p["last_name"] for p in found] == ["Léger"]
    assert found[0]["role"] == "nurse"
    found = (await patient.get("/api/practitioners?q=martin")).body["items"]
    assert [(p["first_name"], p["specialty"]) for p in found] == [("Claire", "general_practice")]
    assert found[0]["practice"]["name"]
    assert "email" not in found[0] and "rpps" not in found[0]
    # The title people say is part of how they search, not of the name.
    for typed in ("Dr Martin", "docteur claire martin", "Dr. Martin", "Mme Léger"):
        found = (await patient.get(f"/api/practitioners?q={typed}")).body["items"]
        assert len(found) == 1, typed
    assert (await patient.get("/api/practitioners?q=Dr")).status == 422
    # Patients are never found by this search.
    assert (await doctor.get("/api/practitioners?q=durand")).body["items"] == []
    short = await patient.get("/api/practitioners?q=m")
    assert short.status == 422 and "au moins 2 lettres" in short.body["detail"]
    weird = await patient.get("/api/practitioners?q=%25%25")
    assert weird.status == 422 or weird.body["items"] == []


async def test_request_accept_opens_conversation(doctor: Client, patient: Client) -> None:
    doctor_id = doctor.user["id"]  # type: ignore[index]
    sent = await patient.post(
        "/api/contact-requests", {"practitioner_id": doctor_id, "message": "Suivi diabète"}
    )
    assert sent.status == 201 and sent.body["status"] == "pending"
    incoming = (await doctor.get("/api/contact-requests")).body["items"]
    assert [(r["patient"]["last_name"], r["message"]) for r in incoming] == [
        ("Durand", "Suivi diabète")
    ]
    accepted = await doctor.post(f"/api/contact-requests/{sent.body['id']}/accept")
    assert accepted.status == 200 and accepted.body["conversation_id"]
    again = await doctor.post(f"/api/contact-requests/{sent.body['id']}/accept")
    assert again.body["conversation_id"] == accepted.body["conversation_id"]
    assert [c["id"] for c in (await patient.get("/api/conversations")).body["items"]] == [
        accepted.body["conversation_id"]
    ]
    mine = (await patient.get("/api/contact-requests")).body["items"]
    assert mine[0]["status"] == "accepted"
    already = await patient.post("/api/contact-requests", {"practitioner_id": doctor_id})
    assert already.status == 409 and "déjà en relation" in already.body["detail"]
    assert already.body["conversation_id"] == accepted.body["conversation_id"]


async def test_no_duplicate_pending_request_and_cooldown_after_decline(
    doctor: Client, patient: Client, clock: FakeClock
) -> None:
    doctor_id = doctor.user["id"]  # type: ignore[index]
    sent = await patient.post("/api/contact-requests", {"practitioner_id": doctor_id})
    dup = await patient.post("/api/contact-requests", {"practitioner_id": doctor_id})
    assert dup.status == 409 and "déjà une demande en attente" in dup.body["detail"]
    declined = await doctor.post(f"/api/contact-requests/{sent.body['id']}/decline")
    assert declined.status == 200 and declined.body["status"] == "declined"
    assert (await doctor.post(f"/api/contact-requests/{sent.body['id']}/accept")).status == 409
    soon = await patient.post("/api/contact-requests", {"practitioner_id": doctor_id})
    assert soon.status == 409 and "décliné" in soon.body["detail"]
    clock.advance(timedelta(days=31))
    await patient.login()
    later = await patient.post("/api/contact-requests", {"practitioner_id": doctor_id})
    assert later.status == 201


async def test_a_patient_cannot_flood_doctors(patient: Client, make_client: MakeClient) -> None:
    statuses = []
    for i in range(6):
        doc = make_client()
        await doc.register(
            email=f"d{i}@example.fr",
            first_name="Doc",
            last_name=f"D{i}",
            role="doctor",
            rpps=valid_rpps(100 + i),
        )
        reply = await patient.post("/api/contact-requests", {"practitioner_id": doc.user["id"]})  # type: ignore[index]
        statuses.append(reply.status)
    assert statuses == [201] * 5 + [429]


async def test_only_the_addressed_practitioner_decides(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    sent = await patient.post("/api/contact-requests", {"practitioner_id": doctor.user["id"]})  # type: ignore[index]
    other = make_client()
    await other.register(
        email="o@example.fr", first_name="Paul", last_name="Roux", role="doctor", rpps=valid_rpps(5)
    )
    assert (await other.post(f"/api/contact-requests/{sent.body['id']}/accept")).status == 404
    assert (await other.get("/api/contact-requests")).body["items"] == []
    assert (await patient.post(f"/api/contact-requests/{sent.body['id']}/accept")).status == 403
    assert (
        await doctor.post("/api/contact-requests", {"practitioner_id": doctor.user["id"]})
    ).status == 403  # type: ignore[index]


async def test_unknown_or_non_practitioner_target(patient: Client, make_client: MakeClient) -> None:
    other_patient = await new_patient(make_client, 1)
    for target in ("nope", other_patient.user["id"]):  # type: ignore[index]
        reply = await patient.post("/api/contact-requests", {"practitioner_id": target})
        assert reply.status == 404 and reply.body["detail"] == "Praticien introuvable."
    too_long = await patient.post(
        "/api/contact-requests", {"practitioner_id": "x", "message": "a" * 1001}
    )
    assert too_long.status == 422 and too_long.body["errors"][0]["field"] == "message"
