"""Cross-cutting HTTP behaviour: problem+json, CSRF, headers, logs, OpenAPI, health."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, Client, outbox_links

MakeClient = Callable[[], Client]


async def test_unknown_path_and_method_are_problem_json(make_client: MakeClient) -> None:
    client = make_client()
    missing = await client.get("/api/nothing-here")
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    assert missing.body["status"] == 404 and missing.body["detail"]
    wrong = await client.request("DELETE", "/api/me")
    assert wrong.status == 405 and wrong.body["detail"]


async def test_csrf_origin_is_checked_for_cookie_sessions(patient: Client) -> None:
    foreign = await patient.post("/api/auth/logout", headers={"Origin": "https://evil.example"})
    assert foreign.status == 403 and "CSRF" in foreign.body["detail"]
    async with patient.session.post(patient.server.make_url("/api/auth/logout")) as resp:
        assert resp.status == 403  # no Origin, no Referer
    referer = await patient.post(
        "/api/auth/logout", headers={"Origin": "", "Referer": f"{patient.origin}/pro"}
    )
    assert referer.status == 204


async def test_public_url_origin_is_accepted(patient: Client) -> None:
    """Behind a reverse proxy the browser's Origin is TC_PUBLIC_URL."""
    reply = await patient.post("/api/auth/logout", headers={"Origin": "http://teleconsult.test"})
    assert reply.status == 204


async def test_security_headers(make_client: MakeClient) -> None:
    reply = await make_client().get("/login")
    assert reply.status == 200 and "<html" in reply.body
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    assert (await make_client().get("/api/me")).headers["Cache-Control"] == "no-store"


async def test_access_log_has_route_not_token(
    doctor: Client, outbox: Path, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    await doctor.post("/api/invitations", {"first_name": "A", "last_name": "B", "email": "a@b.fr"})
    token = outbox_links(outbox)[0].rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO, logger="teleconsult.access"):
        await make_client().get(f"/api/invitations/token/{token}")
        await make_client().get(f"/i/{token}")
        await make_client().post(
            "/api/auth/login", {"email": "a@b.fr", "password": "secret-pass-1"}
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "teleconsult.access"]
    assert any('"route": "/api/invitations/token/{token}"' in line for line in lines)
    assert any('"route": "/i/{token}"' in line and '"status": 200' in line for line in lines)
    assert all(token not in line and "secret-pass-1" not in line for line in lines)
    assert all('"ms":' in line and '"method":' in line for line in lines)


async def test_openapi_lists_the_contract(make_client: MakeClient) -> None:
    spec = (await make_client().get("/api/openapi.json")).body
    assert spec["openapi"].startswith("3.1")
    for path, method in [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/me", "get"),
        ("/api/invitations", "post"),
        ("/api/invitations/{id}", "patch"),
        ("/api/invitations/{id}/resend", "post"),
        ("/api/invitations/{id}/cancel", "post"),
        ("/api/invitations/token/{token}", "get"),
        ("/api/invitations/token/{token}/accept", "post"),
        ("/api/conversations/{id}/messages", "get"),
        ("/api/conversations/{id}/messages", "post"),
        ("/api/conversations/{id}/read", "post"),
        ("/api/conversations/{id}", "patch"),
        ("/api/uploads", "post"),
        ("/api/attachments/{id}", "get"),
        ("/api/me/messaging", "put"),
        ("/api/practitioners", "get"),
        ("/api/contact-requests", "post"),
        ("/api/contact-requests/{id}/accept", "post"),
        ("/api/conversations", "get"),
    ]:
        assert method in spec["paths"][path], path
    schema = spec["components"]["schemas"]["InvitationBody"]
    assert {"first_name", "last_name", "email", "phone"} <= set(schema["properties"])


async def test_pages_are_served(make_client: MakeClient) -> None:
    client = make_client()
    for path in ("/login", "/register", "/i/sometoken", "/pro", "/patient"):
        reply = await client.get(path)
        assert reply.status == 200 and '<html lang="fr">' in reply.body, path
    assert (await client.get("/static/js/api.js")).status == 200
    async with client.session.get(client.server.make_url("/"), allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/login"


async def test_call_page_sends_the_signed_out_to_sign_in_first(
    make_client: MakeClient, patient: Client
) -> None:
    # The call page asks for the camera as it starts: it must never reach a signed-out visitor.
    stranger = make_client()
    url = stranger.server.make_url("/c/some-call")
    async with stranger.session.get(url, allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/login?next=/c/some-call"
    signed_in = await patient.get("/c/some-call")
    assert signed_in.status == 200 and "getUserMedia" in signed_in.body


async def test_the_call_page_runs_its_own_inline_script_and_no_other(patient: Client) -> None:
    # The early script is inline (nothing to fetch before the camera is asked for): the page's
    # policy allows exactly that script, by its hash, and no other inline script.
    page = await patient.get("/c/some-call")
    (early,) = re.findall(r"<script>(.*?)</script>", page.body, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(early.encode()).digest()).decode()
    policy = page.headers["Content-Security-Policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src"))
    assert script_src == f"script-src 'self' 'sha256-{digest}'"
    assert "unsafe-inline" not in policy
    # The other pages allow no inline script at all.
    login = await patient.get("/login")
    assert "script-src 'self';" in login.headers["Content-Security-Policy"]


async def test_redirects_are_logged_with_their_status(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    with caplog.at_level(logging.INFO, logger="teleconsult.access"):
        async with client.session.get(client.server.make_url("/"), allow_redirects=False) as resp:
            assert resp.status == 302
    [line] = [r.getMessage() for r in caplog.records if r.name == "teleconsult.access"]
    assert '"status": 302' in line


async def test_a_request_whose_client_goes_away_still_finishes_its_work(
    patient: Client, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page that navigates away aborts its requests. The handler must not be cut in the
    middle of its transaction: on SQLite that left the write lock held and every other request
    waited 30 s. It finishes as written; only its answer is lost."""
    services = patient.services
    inside, release = asyncio.Event(), asyncio.Event()
    verify = services.passwords.verify

    async def held_verify(stored: str, password: str) -> bool:
        inside.set()  # the sign-in's transaction is open
        await release.wait()
        return await verify(stored, password)

    monkeypatch.setattr(services.passwords, "verify", held_verify)
    assert patient.user is not None
    other_device = make_client()
    sign_in = asyncio.ensure_future(
        other_device.post("/api/auth/login", {"email": patient.user["email"], "password": PASSWORD})
    )
    await inside.wait()
    sign_in.cancel()  # the page goes away: the connection closes
    with contextlib.suppress(asyncio.CancelledError):
        await sign_in
    await asyncio.sleep(0.3)  # the server sees the connection gone (and cancels its handler)
    release.set()
    # Other requests go through at once, and the sign-in was completed: a session was opened.
    sessions = await asyncio.wait_for(patient.get("/api/auth/sessions"), 5)
    assert sessions.status == 200 and len(sessions.body["items"]) == 2, sessions.body
