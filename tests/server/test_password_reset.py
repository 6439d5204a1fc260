"""A forgotten password (domain.md §7): a link by email or a code by SMS, valid one hour, single
use; confirming ends every session and socket; asking tells nothing about who has an account."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from server.clock import FakeClock
from server.http.keys import SERVICES
from server.models import AuditEvent, Notice, NoticeStatus, PasswordReset
from server.notify.loop import notify_once
from tests.helpers import PASSWORD, Client
from tests.mail import SmtpServer
from tests.signaling.sockets import Tab
from tests.sms_gateway import SmsGateway

NEW_PASSWORD = "une toute nouvelle phrase"


async def reset_server(
    start_server: Callable[..., Any], smtp: SmtpServer, sms: tuple[SmsGateway, str]
) -> TestServer:
    server: TestServer = await start_server(smtp_url=smtp.url, sms_url=sms[1])
    return server


async def register_eloise(client: Client, **more: str) -> None:
    await client.register(
        email="eloise.durand@example.fr", first_name="Éloïse", last_name="Durand", **more
    )


def resets(smtp: SmtpServer) -> list[Any]:
    return [m for m in smtp.inbox.messages if m["Subject"] == "Choisir un nouveau mot de passe"]


def link_in(smtp: SmtpServer) -> str:
    [mail] = resets(smtp)
    text = mail.get_body(("plain",)).get_content()
    [link] = re.findall(r"http://teleconsult\.test/reset/[A-Za-z0-9_-]+", text)
    return str(link)


async def test_reset_by_email_link_ends_every_session_and_socket(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms_gateway: tuple[SmsGateway, str],
    tabs: Callable[[Client], Tab],
) -> None:
    server = await reset_server(start_server, smtp, sms_gateway)
    patient = client_of(server)
    await patient.register(
        email="eloise.durand@example.fr", first_name="Éloïse", last_name="Durand"
    )
    tab = tabs(patient)
    await tab.connect()
    stranger = client_of(server)
    asked = await stranger.post("/api/auth/password-reset", {"email": "Eloise.Durand@example.fr"})
    assert asked.status == 202 and "Si un compte correspond" in asked.body["detail"]
    assert await notify_once(server.app[SERVICES]) == 2  # with the sign-up's confirmation
    token = link_in(smtp).rsplit("/", 1)[1]
    assert (await stranger.get(f"/api/auth/password-reset/{token}")).status == 204
    # Only the hash of the link's token is stored.
    async with server.app[SERVICES].sessionmaker() as db:
        stored = await db.scalar(select(PasswordReset.secret_hash))
    assert stored is not None and token not in stored

    weak = await stranger.post(
        "/api/auth/password-reset/confirm", {"token": token, "password": "court"}
    )
    assert weak.status == 422 and weak.body["errors"][0]["field"] == "password"
    done = await stranger.post(
        "/api/auth/password-reset/confirm", {"token": token, "password": NEW_PASSWORD}
    )
    assert done.status == 200, done
    # The open page is told and its socket closed; the old cookie no longer opens anything.
    [ended] = await tab.wait_for("session:ended")
    assert "mot de passe" in ended["detail"]
    await tab.wait_closed()
    assert (await patient.get("/api/me")).status == 401
    # The link served once.
    again = await stranger.post(
        "/api/auth/password-reset/confirm", {"token": token, "password": NEW_PASSWORD + "!"}
    )
    assert again.status == 410 and "déjà servi" in again.body["detail"]
    assert (await stranger.get(f"/api/auth/password-reset/{token}")).status == 410
    old = await stranger.post(
        "/api/auth/login", {"email": "eloise.durand@example.fr", "password": PASSWORD}
    )
    assert old.status == 401
    new = await stranger.post(
        "/api/auth/login", {"email": "eloise.durand@example.fr", "password": NEW_PASSWORD}
    )
    assert new.status == 200


async def test_a_link_is_worth_one_hour(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms_gateway: tuple[SmsGateway, str],
    clock: FakeClock,
) -> None:
    server = await reset_server(start_server, smtp, sms_gateway)
    patient = client_of(server)
    await patient.register(
        email="eloise.durand@example.fr", first_name="Éloïse", last_name="Durand"
    )
    await patient.post("/api/auth/password-reset", {"email": "eloise.durand@example.fr"})
    await notify_once(server.app[SERVICES])
    token = link_in(smtp).rsplit("/", 1)[1]
    clock.advance(timedelta(minutes=61))
    late = await patient.post(
        "/api/auth/password-reset/confirm", {"token": token, "password": NEW_PASSWORD}
    )
    assert late.status == 410
    assert (await patient.get("/api/me")).status == 200  # nothing changed


async def test_an_unknown_address_gets_the_same_answer_and_the_same_work(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms_gateway: tuple[SmsGateway, str],
) -> None:
    server = await reset_server(start_server, smtp, sms_gateway)
    patient = client_of(server)
    await patient.register(
        email="eloise.durand@example.fr", first_name="Éloïse", last_name="Durand"
    )
    services = server.app[SERVICES]

    async def rows() -> tuple[int, int, int]:
        async with services.sessionmaker() as db:
            return (
                int(await db.scalar(select(func.count(PasswordReset.id))) or 0),
                int(await db.scalar(select(func.count(Notice.id))) or 0),
                int(await db.scalar(select(func.count(AuditEvent.id))) or 0),
            )

    before = await rows()
    known = await client_of(server).post(
        "/api/auth/password-reset", {"email": "eloise.durand@example.fr"}
    )
    middle = await rows()
    unknown = await client_of(server).post(
        "/api/auth/password-reset", {"email": "personne@example.fr"}
    )
    after = await rows()
    assert (known.status, known.body) == (unknown.status, unknown.body)
    # The same rows written either way: the answer's time cannot tell them apart.
    assert [m - b for m, b in zip(middle, before, strict=True)] == [
        a - m for a, m in zip(after, middle, strict=True)
    ]
    assert await notify_once(services) == 3  # with the sign-up's confirmation
    assert len(resets(smtp)) == 1
    async with services.sessionmaker() as db:
        statuses = sorted(
            s
            for s in await db.scalars(select(Notice.status).where(Notice.kind == "password_reset"))
        )
    assert statuses == [NoticeStatus.SENT, NoticeStatus.SKIPPED]


async def test_reset_by_sms_code_and_five_wrong_codes_void_it(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms_gateway: tuple[SmsGateway, str],
) -> None:
    gateway, _ = sms_gateway
    server = await reset_server(start_server, smtp, sms_gateway)
    patient = client_of(server)
    await patient.register(
        email="eloise.durand@example.fr",
        first_name="Éloïse",
        last_name="Durand",
        phone="06 12 34 56 78",
    )
    services = server.app[SERVICES]
    stranger = client_of(server)
    assert (await stranger.post("/api/auth/password-reset", {"phone": "0612345678"})).status == 202
    await notify_once(services)
    [sms] = gateway.received
    assert sms["to"] == "+33612345678"
    code = re.search(r"\b(\d{6})\b", sms["text"]).group(1)  # type: ignore[union-attr]
    assert "Valable 1 heure" in sms["text"]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        refused = await stranger.post(
            "/api/auth/password-reset/confirm",
            {"phone": "06 12 34 56 78", "code": wrong, "password": NEW_PASSWORD},
        )
        assert refused.status == 422 and refused.body["errors"][0]["field"] == "code"
    right = await stranger.post(
        "/api/auth/password-reset/confirm",
        {"phone": "06 12 34 56 78", "code": code, "password": NEW_PASSWORD},
    )
    assert right.status == 200, right
    assert (await patient.get("/api/me")).status == 401

    # A new code, five wrong tries: the right one no longer works.
    await stranger.post("/api/auth/password-reset", {"phone": "+33612345678"})
    await notify_once(services)
    code = re.search(r"\b(\d{6})\b", gateway.received[-1]["text"]).group(1)  # type: ignore[union-attr]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        await stranger.post(
            "/api/auth/password-reset/confirm",
            {"phone": "+33612345678", "code": wrong, "password": NEW_PASSWORD + "x"},
        )
    void = await stranger.post(
        "/api/auth/password-reset/confirm",
        {"phone": "+33612345678", "code": code, "password": NEW_PASSWORD + "x"},
    )
    assert void.status == 422


async def test_asking_is_throttled_and_checked(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    sms_gateway: tuple[SmsGateway, str],
) -> None:
    server = await reset_server(start_server, smtp, sms_gateway)
    patient = client_of(server)
    await patient.register(
        email="eloise.durand@example.fr", first_name="Éloïse", last_name="Durand"
    )
    both = await patient.post(
        "/api/auth/password-reset", {"email": "eloise.durand@example.fr", "phone": "0612345678"}
    )
    assert both.status == 422 and "adresse e-mail ou votre numéro" in both.body["detail"]
    for _ in range(10):
        assert (
            await patient.post("/api/auth/password-reset", {"email": "eloise.durand@example.fr"})
        ).status == 202
    limited = await patient.post("/api/auth/password-reset", {"email": "x@example.fr"})
    assert limited.status == 429 and "Réessayez" in limited.body["detail"]
    # Three messages an hour at most to one account, however many were asked for.
    await notify_once(server.app[SERVICES])
    assert len(resets(smtp)) == 3
