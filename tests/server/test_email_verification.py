"""A patient who signed up alone confirms the address by a link (a typo would send every notice
to a stranger); an invitation that came by email to that address already proved it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestServer

from server.http.keys import SERVICES
from server.notify.loop import notify_once
from tests.helpers import Client, outbox_links, token_of, valid_rpps
from tests.mail import SmtpServer


def confirmations(smtp: SmtpServer) -> list[Any]:
    return [m for m in smtp.inbox.messages if m["Subject"] == "Confirmez votre adresse e-mail"]


def token_in(mail: Any) -> str:
    text = mail.get_body(("plain",)).get_content()
    [token] = re.findall(r"http://teleconsult\.test/verify/([A-Za-z0-9_-]+)", text)
    return str(token)


async def test_a_self_registered_patient_confirms_the_address_by_the_link(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
) -> None:
    server = await start_server(smtp_url=smtp.url)
    patient = client_of(server)
    created = await patient.register(
        email="eloise.durand@example.fr", first_name="Éloïse", last_name="Durand"
    )
    assert created["email_verified"] is False
    assert await notify_once(server.app[SERVICES]) == 1
    [mail] = confirmations(smtp)
    assert mail["To"] == "eloise.durand@example.fr"
    token = token_in(mail)
    stranger = client_of(server)  # the link works from any browser: it is the proof
    confirmed = await stranger.post("/api/auth/verify-email", {"token": token})
    assert confirmed.status == 200 and confirmed.body["email_verified"] is True
    assert (await patient.get("/api/me")).body["email_verified"] is True
    again = await stranger.post("/api/auth/verify-email", {"token": token})
    assert again.status == 410 and "plus valable" in again.body["detail"]
    # Confirmed: asking again sends nothing.
    assert (await patient.post("/api/me/verify-email")).status == 202
    assert await notify_once(server.app[SERVICES]) == 0


async def test_sending_the_link_again_is_limited_and_only_the_latest_counts(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
) -> None:
    server = await start_server(smtp_url=smtp.url)
    patient = client_of(server)
    await patient.register(
        email="eloise.durand@example.fr", first_name="Éloïse", last_name="Durand"
    )
    for _ in range(2):
        assert (await patient.post("/api/me/verify-email")).status == 202
    refused = await patient.post("/api/me/verify-email")
    assert refused.status == 429 and "courriers indésirables" in refused.body["detail"]
    assert await notify_once(server.app[SERVICES]) == 3
    tokens = [token_in(m) for m in confirmations(smtp)]
    assert len(set(tokens)) == 3
    # Each link proves the address; any one of them confirms it.
    assert (await patient.post("/api/auth/verify-email", {"token": tokens[0]})).status == 200


async def test_an_email_invitation_proves_the_address_an_sms_one_does_not(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    outbox: Any,
) -> None:
    server = await start_server()
    doctor = client_of(server)
    await doctor.register(
        email="claire.martin@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(1),
    )
    by_email = await doctor.post(
        "/api/invitations",
        {"first_name": "Jean", "last_name": "Dupont", "email": "jean.dupont@example.fr"},
    )
    by_sms = await doctor.post(
        "/api/invitations", {"first_name": "Léa", "last_name": "Petit", "phone": "0781234567"}
    )
    assert by_email.status == 201 and by_sms.status == 201
    links = outbox_links(outbox)
    assert len(links) == 2
    accepted = []
    for link, email in zip(links, ("jean.dupont@example.fr", "lea.petit@example.fr"), strict=True):
        newcomer = client_of(server)
        reply = await newcomer.post(
            f"/api/invitations/token/{token_of(link)}/accept",
            {"email": email, "password": "correct horse battery"},
        )
        assert reply.status in (200, 201), reply
        accepted.append((await newcomer.get("/api/me")).body)
    verified = {me["email"]: me["email_verified"] for me in accepted}
    assert verified == {"jean.dupont@example.fr": True, "lea.petit@example.fr": False}
