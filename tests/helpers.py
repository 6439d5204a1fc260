"""Test helpers: an API client per person, and valid identifiers."""

from __future__ import annotations

import email
import email.message
import email.policy
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from server.accounts.service import NewUser, attach_secretary, create_user
from server.http.keys import SERVICES
from server.models import Role, User
from server.services import Services
from server.values import luhn_ok

PASSWORD = "correct horse battery"


def valid_rpps(seed: int | None = None) -> str:
    rng = random.Random(seed)
    base = "1" + "".join(rng.choice("0123456789") for _ in range(9))
    return next(base + str(k) for k in range(10) if luhn_ok(base + str(k)))


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body!r})"


@dataclass
class Client:
    """One browser: its own cookie jar, same-origin requests like our pages make."""

    server: TestServer
    session: aiohttp.ClientSession = field(init=False)
    user: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    @property
    def origin(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def services(self) -> Services:
        return self.server.app[SERVICES]

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> Reply:
        all_headers = {"Origin": self.origin}
        all_headers.update(headers or {})
        kwargs: dict[str, Any] = {"headers": all_headers}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.server.make_url(path), **kwargs) as resp:
            if resp.content_type in {"application/json", "application/problem+json"}:
                body = await resp.json(content_type=None)
            else:  # a page, a PDF, an archive: read as text, whatever its bytes
                body = (await resp.read()).decode("utf-8", errors="replace")
            return Reply(resp.status, body, resp.headers)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", path, json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.request("PATCH", path, json, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.request("PUT", path, json, **kw)

    async def delete(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.request("DELETE", path, json, **kw)

    async def register(self, *, approve: bool = True, **fields: Any) -> dict[str, Any]:
        """Signs up through the API. A doctor or nurse is then approved as the install's
        administrator would (``approve=False`` leaves them waiting)."""
        reply = await self.post("/api/auth/register", {"password": PASSWORD, **fields})
        assert reply.status == 201, reply
        self.user = reply.body
        if approve and reply.body["pending_approval"]:
            remote = getattr(self.server, "approve", None)
            if remote is not None:  # a server process of its own
                await remote(reply.body["email"])
            else:
                await approve_account(self.services, reply.body["id"])
            self.user = (await self.get("/api/me")).body
        return reply.body

    async def login(self) -> None:
        assert self.user is not None
        reply = await self.post(
            "/api/auth/login", {"email": self.user["email"], "password": PASSWORD}
        )
        assert reply.status == 200, reply

    async def close(self) -> None:
        await self.session.close()


async def approve_account(services: Services, user_id: str) -> None:
    async with services.sessionmaker() as db:
        user = await db.get(User, user_id)
        assert user is not None
        user.approved_at = services.clock.now()
        await db.commit()


def outbox_links(outbox: Path) -> list[str]:
    """Every invitation link written to the outbox, oldest first."""
    if not outbox.exists():
        return []
    files = sorted(outbox.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    links: list[str] = []
    for path in files:
        text = path.read_text()
        if path.suffix == ".eml":
            message = email.message_from_string(text, policy=email.policy.default)
            assert isinstance(message, email.message.EmailMessage)
            body = message.get_body(("plain",))
            assert body is not None
            text = body.get_content()
        links.extend(re.findall(r"https?://[^\s\"<]+/i/[A-Za-z0-9_-]+", text))
    return links


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


async def connect(doctor: Client, patient: Client) -> str:
    """Put a patient in contact with a doctor (connection request accepted); the conversation id."""
    assert doctor.user is not None
    sent = await patient.post("/api/contact-requests", {"practitioner_id": doctor.user["id"]})
    assert sent.status == 201, sent
    accepted = await doctor.post(f"/api/contact-requests/{sent.body['id']}/accept")
    assert accepted.status == 200, accepted
    return str(accepted.body["conversation_id"])


async def make_secretary(client: Client, doctor_id: str) -> None:
    """Secretaries are created by an admin, not by signing up: made directly, then signed in."""
    services = client.services
    async with services.sessionmaker() as db:
        secretary = await create_user(
            db,
            services,
            NewUser(
                email="sec@example.fr",
                password=PASSWORD,
                first_name="Sophie",
                last_name="Petit",
                role=Role.SECRETARY,
            ),
            actor_id=None,
            ip=None,
        )
        doctor = await db.get(User, doctor_id)
        assert doctor is not None
        await attach_secretary(db, secretary, doctor)
        await db.commit()
    client.user = {"email": "sec@example.fr"}
    await client.login()


async def make_admin(client: Client) -> Client:
    """The install's administrator: made directly (nobody signs up as one), then signed in."""
    services = client.services
    async with services.sessionmaker() as db:
        await create_user(
            db,
            services,
            NewUser(
                email="admin@example.fr",
                password=PASSWORD,
                first_name="Ada",
                last_name="Admin",
                role=Role.ADMIN,
            ),
            actor_id=None,
            ip=None,
        )
        await db.commit()
    client.user = {"email": "admin@example.fr"}
    await client.login()
    return client


RouteCase = tuple[str, str, Any, dict[str, int]]


async def check_route_matrix(routes: list[RouteCase], callers: dict[str, Client]) -> None:
    """Each (method, path, body, {role: expected status}) called as each role; every mismatch
    is listed at once, and every refusal must say why."""
    failures = []
    for method, path, body, expected in routes:
        for role, status in expected.items():
            reply = await callers[role].request(method, path, body)
            if reply.status != status:
                failures.append(f"{role} {method} {path}: {reply.status} != {status} {reply.body}")
            if status >= 400:
                assert reply.body["detail"], (role, path)
    assert not failures, "\n".join(failures)
