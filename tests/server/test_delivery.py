"""Real delivery: SMTP to a local aiosmtpd server, SMS to a local HTTP gateway; retries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestServer

from server.clock import FakeClock
from server.invitations.delivery import deliver_due
from tests.helpers import PASSWORD, Client, token_of, valid_rpps
from tests.mail import SmtpServer
from tests.sms_gateway import SmsGateway

INVITEE = {"first_name": "Éloïse", "last_name": "Durand", "email": "eloise@example.fr"}


async def signed_in_doctor(client: Client) -> Client:
    await client.register(
        email="dr@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(3),
    )
    return client


async def test_invitation_email_through_real_smtp(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
) -> None:
    server = await start_server(smtp_url=smtp.url)
    doctor = await signed_in_doctor(client_of(server))
    reply = await doctor.post("/api/invitations", INVITEE)
    assert reply.status == 201 and reply.body["delivery_status"] == "sent"
    [message] = smtp.inbox.messages
    assert message["To"] == "eloise@example.fr"
    assert "Dr Claire Martin" in message["Subject"]
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    text, markup = plain.get_content(), html.get_content()
    assert "Bonjour Éloïse" in text and "Dr Claire Martin" in text
    link = next(w for w in text.split() if "/i/" in w)
    assert link.startswith("http://teleconsult.test/i/") and link in markup
    patient = client_of(server)
    accepted = await patient.post(
        f"/api/invitations/token/{token_of(link)}/accept", {"password": PASSWORD}
    )
    assert accepted.status == 200


async def test_smtp_down_is_retried_and_visible(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    clock: FakeClock,
) -> None:
    smtp.stop()
    server = await start_server(smtp_url=smtp.url)
    doctor = await signed_in_doctor(client_of(server))
    reply = await doctor.post("/api/invitations", INVITEE)
    assert reply.status == 201  # the invitation is kept even though the mail server is down
    assert reply.body["delivery_status"] == "retrying"
    assert reply.body["delivery"]["attempts"] == 1
    assert "SMTP 127.0.0.1" in reply.body["delivery"]["last_error"]
    assert reply.body["delivery"]["next_attempt_at"]
    services = doctor.services
    assert await deliver_due(services) == 0  # not due yet
    smtp.start()
    clock.advance(timedelta(seconds=31))
    assert await deliver_due(services) == 1
    [item] = (await doctor.get("/api/invitations")).body["items"]
    assert item["delivery_status"] == "sent" and item["delivery"]["attempts"] == 2
    assert len(smtp.inbox.messages) == 1


async def test_delivery_gives_up_after_the_last_retry(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    clock: FakeClock,
) -> None:
    smtp.stop()
    server = await start_server(smtp_url=smtp.url)
    doctor = await signed_in_doctor(client_of(server))
    await doctor.post("/api/invitations", INVITEE)
    for _ in range(4):
        clock.advance(timedelta(hours=2))
        assert await deliver_due(doctor.services) == 1
    await doctor.login()
    [item] = (await doctor.get("/api/invitations")).body["items"]
    assert item["delivery_status"] == "failed" and item["delivery"]["attempts"] == 5
    assert item["status"] == "pending"  # the doctor can correct or resend
    clock.advance(timedelta(days=1))
    assert await deliver_due(doctor.services) == 0


async def test_sms_through_the_http_gateway_with_a_retry(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    sms_gateway: tuple[SmsGateway, str],
    clock: FakeClock,
) -> None:
    gateway, url = sms_gateway
    gateway.fail_next = 1
    server = await start_server(sms_url=url)
    doctor = await signed_in_doctor(client_of(server))
    reply = await doctor.post(
        "/api/invitations", {"first_name": "Jean", "last_name": "Dupont", "phone": "07 81 23 45 67"}
    )
    assert reply.status == 201, reply
    assert reply.body["channel"] == "sms" and reply.body["delivery_status"] == "retrying"
    assert "503" in reply.body["delivery"]["last_error"]
    clock.advance(timedelta(seconds=31))
    assert await deliver_due(doctor.services) == 1
    [sms] = gateway.received
    assert sms["to"] == "+33781234567"
    assert "Dr Claire Martin" in sms["text"] and "http://teleconsult.test/i/" in sms["text"]
    # The link of the failed attempt was never delivered; the delivered one works.
    token = token_of(sms["text"].split()[-1])
    assert (await doctor.get(f"/api/invitations/token/{token}")).status == 200


async def test_cancelling_stops_pending_retries(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    clock: FakeClock,
) -> None:
    smtp.stop()
    server = await start_server(smtp_url=smtp.url)
    doctor = await signed_in_doctor(client_of(server))
    inv = (await doctor.post("/api/invitations", INVITEE)).body
    await doctor.post(f"/api/invitations/{inv['id']}/cancel")
    smtp.start()
    clock.advance(timedelta(minutes=5))
    assert await deliver_due(doctor.services) == 0
    assert smtp.inbox.messages == []
