"""Messages over HTTP: posting, idempotency, order, the write rule, read marks, unread counts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from server.clock import FakeClock
from server.models import Message
from tests.helpers import Client, connect, make_secretary

MakeClient = Callable[[], Client]


async def post(client: Client, conversation_id: str, body: str, **extra: object) -> dict:  # type: ignore[type-arg]
    reply = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        {"client_id": f"c-{body}-{id(extra)}", "body": body, **extra},
    )
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def test_doctor_writes_patient_replies_history_in_order(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    first = await post(doctor, cid, "Bonjour, comment allez-vous ?")
    assert first["seq"] == 1 and first["reply_allowed"] is True and first["reason"] is None
    assert first["author"]["display_name"] == "Dr Claire Martin"
    answer = await post(patient, cid, "Mieux, merci", reason="question")
    assert answer["seq"] == 2 and answer["reason"] == "question"
    history = (await doctor.get(f"/api/conversations/{cid}/messages")).body["items"]
    assert [m["body"] for m in history] == ["Bonjour, comment allez-vous ?", "Mieux, merci"]
    after = (await doctor.get(f"/api/conversations/{cid}/messages?after_seq=1")).body["items"]
    assert [m["seq"] for m in after] == [2]
    listed = (await patient.get("/api/conversations")).body["items"][0]
    assert listed["last_message"]["body"] == "Mieux, merci"


async def test_same_client_id_is_the_same_message(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    body = {"client_id": "abc-1", "body": "Votre ordonnance est prête"}
    first = await doctor.post(f"/api/conversations/{cid}/messages", body)
    again = await doctor.post(f"/api/conversations/{cid}/messages", body)
    assert (first.status, again.status) == (201, 200)
    assert first.body["id"] == again.body["id"] and again.body["seq"] == 1
    # Two sends of one message at the same instant: still one message.
    racing = {"client_id": "abc-2", "body": "Rendez-vous confirmé"}
    replies = await asyncio.gather(
        *(doctor.post(f"/api/conversations/{cid}/messages", racing) for _ in range(4))
    )
    assert sorted(r.status for r in replies) == [200, 200, 200, 201]
    assert len({r.body["id"] for r in replies}) == 1
    async with doctor.services.sessionmaker() as db:
        assert await db.scalar(select(func.count(Message.id))) == 2


async def test_concurrent_posts_get_gap_free_seqs(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    await doctor.patch(f"/api/conversations/{cid}", {"patient_can_write": True})
    sends = [
        doctor.post(f"/api/conversations/{cid}/messages", {"client_id": f"d{i}", "body": f"d{i}"})
        for i in range(10)
    ]
    sends += [
        patient.post(f"/api/conversations/{cid}/messages", {"client_id": f"p{i}", "body": f"p{i}"})
        for i in range(10)
    ]
    replies = await asyncio.gather(*sends)
    assert all(r.status == 201 for r in replies), [r for r in replies if r.status != 201]
    assert sorted(r.body["seq"] for r in replies) == list(range(1, 21))


async def test_patient_cannot_start_a_thread_by_default(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    refused = await patient.post(
        f"/api/conversations/{cid}/messages", {"client_id": "x", "body": "Bonjour"}
    )
    assert refused.status == 403
    assert "ne reçoit pas de nouveaux messages" in refused.body["detail"]
    assert refused.body["code"] == "closed"
    state = (await patient.get(f"/api/conversations/{cid}")).body["permissions"]
    assert state["can_write"] is False and state["code"] == "closed"
    await post(doctor, cid, "Pas de réponse attendue", reply_allowed=False)
    refused = await patient.post(
        f"/api/conversations/{cid}/messages", {"client_id": "x", "body": "Merci"}
    )
    assert refused.status == 403 and refused.body["code"] == "reply_not_allowed"
    await post(doctor, cid, "Envoyez-moi votre résultat")  # reply_allowed defaults to true
    ok = await patient.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "x", "body": "Voici", "reason": "test_result"},
    )
    assert ok.status == 201
    async with doctor.services.sessionmaker() as db:
        # Nothing of the refused attempts was stored.
        assert await db.scalar(select(func.count(Message.id))) == 3


async def test_doctor_opens_and_closes_per_conversation_and_globally(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    opened = await doctor.patch(f"/api/conversations/{cid}", {"patient_can_write": True})
    assert opened.status == 200 and opened.body["patient_can_write"] is True
    await post(patient, cid, "Question 1")
    await doctor.patch(f"/api/conversations/{cid}", {"patient_can_write": None})
    assert (
        await patient.post(f"/api/conversations/{cid}/messages", {"client_id": "q2", "body": "Q2"})
    ).status == 403
    settings = await doctor.request("PUT", "/api/me/messaging", {"open": True})
    assert settings.status == 200 and settings.body == {"open": True, "away": None}
    await post(patient, cid, "Question 2")
    await doctor.patch(f"/api/conversations/{cid}", {"patient_can_write": False})
    assert (
        await patient.post(f"/api/conversations/{cid}/messages", {"client_id": "q3", "body": "Q3"})
    ).status == 403
    assert (
        await patient.patch(f"/api/conversations/{cid}", {"patient_can_write": True})
    ).status == 403
    bad = await doctor.patch(f"/api/conversations/{cid}", {"patient_can_write": "yes please"})
    assert bad.status == 422


async def test_away_mode_with_exception(
    doctor: Client, patient: Client, make_client: MakeClient, clock: FakeClock
) -> None:
    cid = await connect(doctor, patient)
    other = make_client()
    await other.register(email="other@example.fr", first_name="Paul", last_name="Roux")
    cid2 = await connect(doctor, other)
    await doctor.request("PUT", "/api/me/messaging", {"open": True})
    start = clock.now() + timedelta(hours=1)
    until = clock.now() + timedelta(days=7)
    away = {
        "from": start.isoformat(),
        "until": until.isoformat(),
        "message": "En cas d'urgence, appelez le 15.",
        "exceptions": [other.user["id"]],
    }  # type: ignore[index]
    saved = await doctor.request("PUT", "/api/me/messaging", {"open": True, "away": away})
    assert saved.status == 200 and saved.body["away"]["active"] is False
    await post(patient, cid, "Avant l'absence")
    clock.advance(timedelta(hours=2))
    refused = await patient.post(
        f"/api/conversations/{cid}/messages", {"client_id": "a", "body": "Pendant"}
    )
    assert refused.status == 403 and refused.body["code"] == "away"
    assert (
        "absent·e jusqu'au" in refused.body["detail"] and "appelez le 15" in refused.body["detail"]
    )
    assert refused.body["until"] == until.isoformat()
    await post(other, cid2, "Suivi qui doit rester ouvert")  # the exception may still write
    assert (
        await doctor.post(
            f"/api/conversations/{cid}/messages", {"client_id": "d", "body": "Je suis là"}
        )
    ).status == 201
    clock.advance(timedelta(days=7))
    await patient.login()
    assert (
        await patient.post(
            f"/api/conversations/{cid}/messages", {"client_id": "b", "body": "Après"}
        )
    ).status == 201


async def test_away_mode_bad_input(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="S", last_name="S")
    put = lambda body: doctor.request("PUT", "/api/me/messaging", body)  # noqa: E731
    assert (await put({"open": True, "away": {}})).status == 422
    backwards = await put(
        {
            "open": True,
            "away": {"from": "2026-12-10T00:00:00+01:00", "until": "2026-12-01T00:00:00+01:00"},
        }
    )
    assert backwards.status == 422 and "suivre son début" in backwards.body["detail"]
    naive = await put({"open": True, "away": {"until": "2026-12-01T00:00:00"}})
    assert naive.status == 422
    not_followed = await put(
        {
            "open": False,
            "away": {"until": "2026-12-01T00:00:00+01:00", "exceptions": [stranger.user["id"]]},
        }
    )  # type: ignore[index]
    assert not_followed.status == 422 and "non suivi" in not_followed.body["detail"]
    assert (await patient.request("PUT", "/api/me/messaging", {"open": True})).status == 403
    assert (await doctor.get("/api/me/messaging")).body == {"open": False, "away": None}


async def test_bad_message_input(doctor: Client, patient: Client, make_client: MakeClient) -> None:
    cid = await connect(doctor, patient)
    url = f"/api/conversations/{cid}/messages"
    empty = await doctor.post(url, {"client_id": "e", "body": "   "})
    assert empty.status == 422 and "vide" in empty.body["detail"]
    assert (await doctor.post(url, {"body": "sans id"})).status == 422
    assert (await doctor.post(url, {"client_id": "x" * 65, "body": "a"})).status == 422
    assert (await doctor.post(url, {"client_id": "l", "body": "a" * 10_001})).status == 422
    bad_reason = await patient.post(url, {"client_id": "r", "body": "a", "reason": "gossip"})
    assert bad_reason.status == 422 and bad_reason.body["errors"][0]["field"] == "reason"
    unknown_attachment = await doctor.post(
        url, {"client_id": "u", "body": "a", "attachment_ids": ["nope"]}
    )
    assert unknown_attachment.status == 422 and "inconnue" in unknown_attachment.body["detail"]
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="S", last_name="S")
    for reply in (
        await stranger.post(url, {"client_id": "s", "body": "hello"}),
        await stranger.get(url),
        await stranger.post(f"/api/conversations/{cid}/read", {"up_to_seq": 1}),
    ):
        assert reply.status == 404 and reply.body["detail"] == "Conversation introuvable."
    assert (await doctor.get(f"{url}?limit=0")).status == 422
    assert (await doctor.get(f"{url}?after_seq=abc")).status == 422


async def test_read_marks_and_unread_counts(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    for i in range(3):
        await post(doctor, cid, f"m{i}")
    listed = (await patient.get("/api/conversations")).body["items"][0]
    assert listed["unread"] == 3
    assert (await doctor.get("/api/conversations")).body["items"][0]["unread"] == 0
    assert (await patient.post(f"/api/conversations/{cid}/read", {"up_to_seq": 2})).status == 204
    assert (await patient.get("/api/conversations")).body["items"][0]["unread"] == 1
    await patient.post(f"/api/conversations/{cid}/read", {"up_to_seq": 1})  # never backwards
    assert (await patient.get("/api/conversations")).body["items"][0]["unread"] == 1
    await patient.post(f"/api/conversations/{cid}/read", {"up_to_seq": 99})  # capped at last seq
    assert (await patient.get("/api/conversations")).body["items"][0]["unread"] == 0
    history = (await doctor.get(f"/api/conversations/{cid}/messages")).body["items"]
    assert all(patient.user["id"] in m["read_by"] for m in history)  # type: ignore[index]
    assert (await patient.post(f"/api/conversations/{cid}/read", {"up_to_seq": -1})).status == 422


async def test_secretary_writes_in_her_own_name(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    secretary = make_client()
    await make_secretary(secretary, doctor.user["id"])  # type: ignore[index]
    message = await post(secretary, cid, "Rappel : règlement de la consultation")
    assert message["author"]["display_name"] == "Sophie Petit"
    assert message["author"]["role"] == "secretary"
    shown = (await patient.get(f"/api/conversations/{cid}/messages")).body["items"][0]
    assert shown["author"]["first_name"] == "Sophie"
    # A secretary's message allows a reply by default like any professional's.
    assert (
        await patient.post(f"/api/conversations/{cid}/messages", {"client_id": "r", "body": "Fait"})
    ).status == 201


async def test_added_nurse_becomes_a_member(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    nurse = make_client()
    from tests.helpers import valid_rpps

    await nurse.register(
        email="n@example.fr",
        first_name="Nina",
        last_name="Nurse",
        role="nurse",
        rpps=valid_rpps(30),
    )
    assert (await nurse.get(f"/api/conversations/{cid}")).status == 404
    added = await doctor.post(
        f"/api/conversations/{cid}/participants", {"user_id": nurse.user["id"]}
    )  # type: ignore[index]
    assert added.status == 200
    assert {p["role"] for p in added.body["participants"]} == {"doctor", "nurse", "patient"}
    assert (await nurse.get(f"/api/conversations/{cid}")).status == 200
    assert (
        await patient.post(f"/api/conversations/{cid}/participants", {"user_id": nurse.user["id"]})
    ).status == 403  # type: ignore[index]
    not_pro = await doctor.post(
        f"/api/conversations/{cid}/participants", {"user_id": patient.user["id"]}
    )  # type: ignore[index]
    assert not_pro.status == 404
