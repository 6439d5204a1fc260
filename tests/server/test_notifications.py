"""Reaching people who are not on the page (domain.md §7): a call's join link, one notice for
unread messages, connection requests, quiet hours — through the real SMTP server, the SMS
gateway stand-in and a Web Push service stand-in that checks VAPID and decrypts as a browser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from server.clock import FakeClock
from server.http.keys import SERVICES
from server.models import Notice, NoticeStatus
from server.notify.loop import notify_once
from server.notify.preferences import Preferences, quiet_until
from server.services import Services
from tests.helpers import PASSWORD, Client, valid_rpps
from tests.mail import SmtpServer
from tests.push_service import Browser, PushService
from tests.signaling.sockets import Tab
from tests.sms_gateway import SmsGateway

DELAY = 300


@dataclass
class Practice:
    server: TestServer
    doctor: Client
    patient: Client
    conversation_id: str
    sms: SmsGateway
    smtp: SmtpServer
    push: PushService
    phone: Browser  # the patient's phone, subscribed to pushes

    @property
    def services(self) -> Services:
        return self.server.app[SERVICES]

    async def run(self) -> int:
        return await notify_once(self.services)

    async def notices(self) -> list[Notice]:
        async with self.services.sessionmaker() as db:
            return list(await db.scalars(select(Notice).order_by(Notice.created_at)))

    def emails_to(self, address: str) -> list[Any]:
        return [m for m in self.smtp.inbox.messages if m["To"] == address]


async def start_practice(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms: tuple[SmsGateway, str],
    push: PushService,
    **changes: Any,
) -> Practice:
    server = await start_server(
        smtp_url=smtp.url,
        sms_url=sms[1],
        push_services=(push.origin,),
        notify_delay_s=DELAY,
        **changes,
    )
    doctor, patient = client_of(server), client_of(server)
    await doctor.register(
        email="claire.martin@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(1),
    )
    await patient.register(
        email="eloise.durand@example.fr",
        first_name="Éloïse",
        last_name="Durand",
        phone="06 12 34 56 78",
    )
    sent = await patient.post("/api/contact-requests", {"practitioner_id": doctor.user["id"]})  # type: ignore[index]
    accepted = await doctor.post(f"/api/contact-requests/{sent.body['id']}/accept")
    assert accepted.status == 200, accepted
    phone = push.new_browser()
    subscribed = await patient.post("/api/push/subscriptions", phone.subscription())
    assert subscribed.status == 201, subscribed
    practice = Practice(
        server, doctor, patient, accepted.body["conversation_id"], sms[0], smtp, push, phone
    )
    await practice.run()  # the connection request's notice to the doctor leaves now
    smtp.inbox.messages.clear()
    return practice


@pytest.fixture
async def practice(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms_gateway: tuple[SmsGateway, str],
    push_service: PushService,
) -> Practice:
    return await start_practice(start_server, client_of, smtp, sms_gateway, push_service)


async def write(client: Client, conversation_id: str, body: str) -> int:
    extra = {} if client.user and client.user["role"] != "patient" else {"reason": "question"}
    reply = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        {"client_id": f"m-{body}", "body": body, **extra},
    )
    assert reply.status == 201, reply
    return int(reply.body["seq"])


async def test_call_started_sends_the_join_link_to_the_absent_patient_by_sms_and_push(
    practice: Practice,
) -> None:
    started = await practice.doctor.post(
        f"/api/conversations/{practice.conversation_id}/calls", {"mode": "p2p"}
    )
    assert started.status == 201, started
    call_id = started.body["id"]
    assert await practice.run() == 1
    link = f"http://teleconsult.test/c/{call_id}"
    [sms] = practice.sms.received
    assert sms["to"] == "+33612345678"
    assert (
        sms["text"]
        == f"Téléconsult : Dr Claire Martin vous attend en vidéo. Pour rejoindre : {link}"
    )
    [push] = practice.phone.received
    assert push["url"] == link and push["title"] == "Dr Claire Martin vous attend en vidéo"
    assert push["tag"] == f"call-{call_id}"
    assert practice.push.refused == []
    # A phone got it: no email on top; and a second click on the camera rings nobody twice.
    assert practice.emails_to("eloise.durand@example.fr") == []
    again = await practice.doctor.post(
        f"/api/conversations/{practice.conversation_id}/calls", {"mode": "p2p"}
    )
    assert again.body["id"] == call_id
    assert await practice.run() == 0
    [notice] = [n for n in await practice.notices() if n.kind == "call_started"]
    assert notice.status == NoticeStatus.SENT and notice.channels_sent == "push,sms"


async def test_the_worker_sends_the_join_link_within_seconds_on_its_own(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms_gateway: tuple[SmsGateway, str],
    push_service: PushService,
) -> None:
    import asyncio

    practice = await start_practice(
        start_server, client_of, smtp, sms_gateway, push_service, delivery_worker=True
    )
    started = await practice.doctor.post(
        f"/api/conversations/{practice.conversation_id}/calls", {"mode": "p2p"}
    )
    # The worker polls every few seconds, but the call's commit rings it: well within 10 s.
    await asyncio.wait_for(practice.phone.arrived.wait(), 10)
    assert practice.phone.received[0]["url"].endswith(f"/c/{started.body['id']}")
    assert any(started.body["id"] in s["text"] for s in practice.sms.received)


async def test_a_patient_on_the_page_gets_no_call_notice(
    practice: Practice, tabs: Callable[[Client], Tab]
) -> None:
    tab = tabs(practice.patient)
    await tab.connect()
    started = await practice.doctor.post(
        f"/api/conversations/{practice.conversation_id}/calls", {"mode": "p2p"}
    )
    assert started.status == 201
    await tab.wait_for("call:ring")  # the page rings instead
    assert await practice.run() == 1
    [notice] = [n for n in await practice.notices() if n.kind == "call_started"]
    assert (notice.status, notice.last_error) == (NoticeStatus.SKIPPED, "on the page")
    assert practice.sms.received == [] and practice.phone.received == []


async def test_three_unread_messages_make_one_notice_without_their_content(
    practice: Practice, clock: FakeClock
) -> None:
    for text in ("Vos résultats de prise de sang", "sont arrivés", "Rappelez-moi"):
        await write(practice.doctor, practice.conversation_id, text)
        clock.advance(timedelta(seconds=30))
    # The first message is 90 s old: nothing yet.
    assert await practice.run() == 0
    clock.advance(timedelta(seconds=DELAY))
    assert await practice.run() == 1
    [mail] = practice.emails_to("eloise.durand@example.fr")
    assert mail["Subject"] == "Nouveau message de Dr Claire Martin"
    text = mail.get_body(("plain",)).get_content()
    assert f"http://teleconsult.test/patient#c={practice.conversation_id}" in text
    assert "Bonjour Éloïse," in text
    for secret in ("résultats", "prise de sang", "Rappelez"):
        assert secret not in mail.as_string() and secret not in str(practice.phone.received)
    [push] = practice.phone.received
    assert push["body"] == "Vous avez un nouveau message de Dr Claire Martin sur Téléconsult."
    # Unread messages do not cost an SMS when email and push carried them.
    assert practice.sms.received == []
    clock.advance(timedelta(seconds=DELAY * 3))
    assert await practice.run() == 0
    assert len(practice.emails_to("eloise.durand@example.fr")) == 1


async def test_read_before_the_delay_means_no_notice(practice: Practice, clock: FakeClock) -> None:
    seq = await write(practice.doctor, practice.conversation_id, "Bonjour")
    read = await practice.patient.post(
        f"/api/conversations/{practice.conversation_id}/read", {"up_to_seq": seq}
    )
    assert read.status == 204
    clock.advance(timedelta(seconds=DELAY + 1))
    assert await practice.run() == 0
    kinds = [n.kind for n in await practice.notices()]
    assert [k for k in kinds if k != "email_verification"] == ["contact_request"]
    assert practice.emails_to("eloise.durand@example.fr") == []


async def test_read_between_queueing_and_sending_means_no_notice(
    practice: Practice, clock: FakeClock
) -> None:
    """The notice is queued, the SMTP server is down; the patient reads; the retry sends
    nothing."""
    seq = await write(practice.doctor, practice.conversation_id, "Bonjour")
    clock.advance(timedelta(seconds=DELAY + 1))
    practice.smtp.stop()
    practice.phone.gone = True
    assert await practice.run() == 1
    [notice] = [n for n in await practice.notices() if n.kind == "unread"]
    assert notice.status == NoticeStatus.RETRYING
    await practice.patient.post(
        f"/api/conversations/{practice.conversation_id}/read", {"up_to_seq": seq}
    )
    practice.smtp.start()
    clock.advance(timedelta(minutes=1))
    assert await practice.run() == 1
    [notice] = [n for n in await practice.notices() if n.kind == "unread"]
    assert (notice.status, notice.last_error) == (NoticeStatus.SKIPPED, "read")
    assert practice.emails_to("eloise.durand@example.fr") == []
    # The push service said the subscription is gone: it is forgotten.
    settings = await practice.patient.get("/api/me/notifications")
    assert settings.body["push_devices"] == 0


async def test_a_restart_inside_the_delay_still_makes_exactly_one_notice(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms_gateway: tuple[SmsGateway, str],
    push_service: PushService,
    clock: FakeClock,
) -> None:
    first = await start_practice(start_server, client_of, smtp, sms_gateway, push_service)
    await write(first.doctor, first.conversation_id, "Un")
    await write(first.doctor, first.conversation_id, "Deux")
    clock.advance(timedelta(seconds=DELAY // 2))
    assert await first.run() == 0
    await first.server.close()  # killed inside the delay: nothing in memory survives

    second = await start_server(
        smtp_url=smtp.url,
        sms_url=sms_gateway[1],
        push_services=(push_service.origin,),
        notify_delay_s=DELAY,
    )
    clock.advance(timedelta(seconds=DELAY))
    services = second.app[SERVICES]
    assert await notify_once(services) == 1
    assert await notify_once(services) == 0
    assert len([m for m in smtp.inbox.messages if m["To"] == "eloise.durand@example.fr"]) == 1
    assert len(first.phone.received) == 1


async def test_the_doctor_hears_of_a_connection_request_and_of_a_patient_message(
    practice: Practice, clock: FakeClock, client_of: Callable[[TestServer], Client]
) -> None:
    # The request made in the fixture reached the doctor: by email, without the patient's name.
    newcomer = client_of(practice.server)
    await newcomer.register(email="jean.dupont@example.fr", first_name="Jean", last_name="Dupont")
    await newcomer.post("/api/contact-requests", {"practitioner_id": practice.doctor.user["id"]})  # type: ignore[index]
    assert await practice.run() == 2  # the request's notice, and the newcomer's confirmation
    [mail] = practice.emails_to("claire.martin@example.fr")
    assert mail["Subject"] == "Nouvelle demande de mise en relation"
    assert "Dupont" not in mail.as_string()
    hello = await write(practice.doctor, practice.conversation_id, "Bonjour")
    await practice.patient.post(
        f"/api/conversations/{practice.conversation_id}/read", {"up_to_seq": hello}
    )
    await write(practice.patient, practice.conversation_id, "J'ai de la fièvre")
    clock.advance(timedelta(seconds=DELAY + 1))
    assert await practice.run() == 1
    mail = practice.emails_to("claire.martin@example.fr")[-1]
    assert mail["Subject"] == "Nouveau message d'un patient"
    assert "fièvre" not in mail.as_string() and "Durand" not in mail.as_string()
    assert f"/pro#c={practice.conversation_id}" in mail.get_body(("plain",)).get_content()


async def test_quiet_hours_hold_messages_but_not_a_call(
    practice: Practice, clock: FakeClock
) -> None:
    # The clock reads 10:00 in Paris; the patient naps from 10:00 to 18:00.
    saved = await practice.patient.put(
        "/api/me/notifications",
        {
            "email": True,
            "sms": True,
            "push": True,
            "quiet_hours": {"from": "10:00", "until": "18:00"},
        },
    )
    assert saved.status == 200, saved
    assert saved.body["quiet_hours"] == {"from": "10:00", "until": "18:00"}
    await write(practice.doctor, practice.conversation_id, "Bonjour")
    clock.advance(timedelta(seconds=DELAY + 1))
    assert await practice.run() == 1
    [notice] = [n for n in await practice.notices() if n.kind == "unread"]
    assert notice.status == NoticeStatus.QUEUED
    assert notice.next_attempt_at == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 18:00 in Paris
    started = await practice.doctor.post(
        f"/api/conversations/{practice.conversation_id}/calls", {"mode": "p2p"}
    )
    assert started.status == 201
    assert await practice.run() == 1
    assert [p["tag"] for p in practice.phone.received] == [f"call-{started.body['id']}"]
    await practice.doctor.post(f"/api/calls/{started.body['id']}/end")
    clock.current = datetime(2026, 11, 23, 17, 0, 30, tzinfo=UTC)
    assert await practice.run() == 1
    assert practice.phone.received[-1]["tag"] == f"conversation-{practice.conversation_id}"


def test_quiet_hours_may_wrap_midnight() -> None:
    night = Preferences(quiet_from="22:00", quiet_until="07:00")
    paris = ZoneInfo("Europe/Paris")
    assert quiet_until(night, datetime(2026, 12, 7, 23, 30, tzinfo=paris)) == datetime(
        2026, 12, 8, 7, 0, tzinfo=paris
    )
    assert quiet_until(night, datetime(2026, 12, 8, 6, 59, tzinfo=paris)) == datetime(
        2026, 12, 8, 7, 0, tzinfo=paris
    )
    assert quiet_until(night, datetime(2026, 12, 8, 7, 0, tzinfo=paris)) is None
    assert quiet_until(night, datetime(2026, 12, 8, 21, 59, tzinfo=paris)) is None
    assert quiet_until(Preferences(), datetime(2026, 12, 8, 23, 0, tzinfo=paris)) is None


async def test_channels_follow_the_settings(practice: Practice, clock: FakeClock) -> None:
    saved = await practice.patient.put(
        "/api/me/notifications", {"email": False, "sms": True, "push": False, "quiet_hours": None}
    )
    assert saved.body == {
        "email": False,
        "sms": True,
        "push": False,
        "quiet_hours": None,
        "phone": "+33612345678",
        "push_devices": 1,
    }
    await write(practice.doctor, practice.conversation_id, "Bonjour")
    clock.advance(timedelta(seconds=DELAY + 1))
    assert await practice.run() == 1
    # No email, no push: the SMS is the one way left.
    [sms] = practice.sms.received
    assert sms["text"].startswith("Téléconsult : vous avez un nouveau message de Dr Claire Martin.")
    assert practice.phone.received == [] and practice.emails_to("eloise.durand@example.fr") == []


async def test_settings_and_subscriptions_refuse_bad_input(practice: Practice) -> None:
    bad = await practice.patient.put(
        "/api/me/notifications",
        {"email": True, "sms": True, "push": True, "quiet_hours": {"from": "25:00", "until": "7"}},
    )
    assert bad.status == 422 and bad.headers["Content-Type"].startswith("application/problem+json")
    assert bad.body["errors"][0]["detail"] == "une heure au format HH:MM, par exemple 22:00"
    assert {e["field"] for e in bad.body["errors"]} == {"quiet_hours.from", "quiet_hours.until"}
    inside = await practice.patient.post(
        "/api/push/subscriptions",
        {**practice.phone.subscription(), "endpoint": "http://10.0.0.1/admin"},
    )
    assert inside.status == 422 and inside.body["errors"][0]["field"] == "endpoint"
    anonymous = Client(practice.server)
    try:
        assert (await anonymous.get("/api/me/notifications")).status == 401
        key = await anonymous.get("/api/push/key")
        assert key.status == 200 and len(key.body["public_key"]) == 87
    finally:
        await anonymous.close()


async def test_tester_sends_one_notice_on_every_channel(practice: Practice) -> None:
    sent = await practice.patient.post("/api/me/notifications/test")
    assert sent.status == 202
    assert await practice.run() == 1
    assert [p["tag"] for p in practice.phone.received] == ["test"]
    assert len(practice.sms.received) == 1
    assert len(practice.emails_to("eloise.durand@example.fr")) == 1


async def test_changing_the_mobile_number_asks_for_the_password(practice: Practice) -> None:
    prefs = {"email": True, "sms": True, "push": True, "quiet_hours": None}
    wrong = await practice.patient.put(
        "/api/me/notifications", {**prefs, "phone": "07 81 23 45 67", "current_password": "non"}
    )
    assert wrong.status == 422 and wrong.body["errors"][0]["field"] == "current_password"
    assert (await practice.patient.get("/api/me")).body["phone"] == "+33612345678"
    changed = await practice.patient.put(
        "/api/me/notifications",
        {**prefs, "phone": "07 81 23 45 67", "current_password": PASSWORD},
    )
    assert changed.status == 200 and changed.body["phone"] == "+33781234567"
    # The same number again, or none given: nothing to confirm.
    same = await practice.patient.put("/api/me/notifications", {**prefs, "phone": "0781234567"})
    assert same.status == 200
    assert (await practice.patient.put("/api/me/notifications", prefs)).status == 200
    removed = await practice.patient.put(
        "/api/me/notifications", {**prefs, "phone": "", "current_password": PASSWORD}
    )
    assert removed.body["phone"] is None
