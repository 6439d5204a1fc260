"""Registration, sign-in, sessions, throttling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from server.clock import FakeClock
from server.models import AuditEvent, AuthSession, User
from tests.helpers import PASSWORD, Client, valid_rpps

MakeClient = Callable[[], Client]


async def test_patient_registers_and_is_signed_in(make_client: MakeClient) -> None:
    client = make_client()
    reply = await client.post(
        "/api/auth/register",
        {
            "email": " Jean.Dupont@Example.FR ",
            "password": PASSWORD,
            "first_name": "Jean",
            "last_name": "Dupont",
            "phone": "06 12 34 56 78",
            "birth_date": "1980-02-29",
        },
    )
    assert reply.status == 201, reply
    assert reply.body["email"] == "jean.dupont@example.fr"
    assert reply.body["role"] == "patient"
    assert reply.body["phone"] == "+33612345678"
    assert "password" not in str(reply.body) and "hash" not in str(reply.body)
    cookie = reply.headers.getall("Set-Cookie")[0]
    assert "tc_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    me = await client.get("/api/me")
    assert me.status == 200 and me.body["id"] == reply.body["id"]


async def test_password_is_hashed_with_argon2id_and_session_token_stored_hashed(
    make_client: MakeClient,
) -> None:
    client = make_client()
    await client.register(email="a@example.fr", first_name="A", last_name="B")
    token = next(c.value for c in client.session.cookie_jar if c.key == "tc_session")
    async with client.services.sessionmaker() as db:
        user = await db.scalar(select(User).where(User.email == "a@example.fr"))
        sessions = list(await db.scalars(select(AuthSession)))
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert len(sessions) == 1 and token not in sessions[0].token_hash
    assert len(token) >= 43  # 256 bits, urlsafe base64


async def test_short_password_is_refused_with_a_clear_message(make_client: MakeClient) -> None:
    reply = await make_client().post(
        "/api/auth/register",
        {"email": "a@example.fr", "password": "court", "first_name": "A", "last_name": "B"},
    )
    assert reply.status == 422
    assert "au moins 10 caractères" in reply.body["detail"]
    assert reply.headers["Content-Type"].startswith("application/problem+json")


async def test_same_email_twice_is_a_conflict(make_client: MakeClient) -> None:
    await make_client().register(email="a@example.fr", first_name="A", last_name="B")
    reply = await make_client().post(
        "/api/auth/register",
        {"email": "A@EXAMPLE.fr", "password": PASSWORD, "first_name": "A", "last_name": "B"},
    )
    assert reply.status == 409
    assert "existe déjà" in reply.body["detail"]


async def test_doctor_needs_a_valid_rpps(make_client: MakeClient) -> None:
    base = {"email": "dr@example.fr", "password": PASSWORD, "first_name": "A", "last_name": "B"}
    client = make_client()
    missing = await client.post("/api/auth/register", {**base, "role": "doctor"})
    assert missing.status == 422 and "RPPS" in missing.body["detail"]
    rpps = valid_rpps(7)
    typo = rpps[:-1] + str((int(rpps[-1]) + 1) % 10)
    wrong_key = await client.post("/api/auth/register", {**base, "role": "doctor", "rpps": typo})
    assert wrong_key.status == 422 and "clé de contrôle" in wrong_key.body["detail"]
    short = await client.post("/api/auth/register", {**base, "role": "doctor", "rpps": "123"})
    assert short.status == 422 and "11 chiffres" in short.body["detail"]
    ok = await client.post("/api/auth/register", {**base, "role": "doctor", "rpps": rpps})
    assert ok.status == 201, ok
    assert ok.body["specialty"] == "general_practice" and ok.body["sector"] == "1"
    assert ok.body["practice_id"]


async def test_secretary_and_admin_cannot_self_register(make_client: MakeClient) -> None:
    for role in ("secretary", "admin"):
        reply = await make_client().post(
            "/api/auth/register",
            {
                "email": f"{role}@example.fr",
                "password": PASSWORD,
                "first_name": "A",
                "last_name": "B",
                "role": role,
            },
        )
        assert reply.status == 422, reply
        assert reply.body["errors"][0]["field"] == "role"


async def test_wrong_json_types_and_unknown_fields(make_client: MakeClient) -> None:
    client = make_client()
    reply = await client.post(
        "/api/auth/register",
        {"email": ["x"], "password": 12345678901, "first_name": "A", "last_name": "B", "x": 1},
    )
    assert reply.status == 422
    fields = {e["field"] for e in reply.body["errors"]}
    assert fields == {"email", "password", "x"}
    not_object = await client.post("/api/auth/register", [1, 2])
    assert not_object.status == 400 and "objet JSON" in not_object.body["detail"]
    garbage = await client.request(
        "POST", "/api/auth/register", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert garbage.status == 400 and "JSON valide" in garbage.body["detail"]


async def test_oversized_body_is_413(make_client: MakeClient) -> None:
    reply = await make_client().post(
        "/api/auth/register",
        {
            "email": "a@example.fr",
            "password": PASSWORD,
            "first_name": "A" * 100_000,
            "last_name": "B",
        },
    )
    assert reply.status == 413
    assert reply.body["status"] == 413


async def test_login_logout_and_same_answer_for_unknown_email(make_client: MakeClient) -> None:
    await make_client().register(email="a@example.fr", first_name="A", last_name="B")
    client = make_client()
    wrong = await client.post("/api/auth/login", {"email": "a@example.fr", "password": "nope" * 3})
    unknown = await client.post(
        "/api/auth/login", {"email": "z@example.fr", "password": "nope" * 3}
    )
    assert wrong.status == unknown.status == 401
    assert wrong.body["detail"] == unknown.body["detail"]
    ok = await client.post("/api/auth/login", {"email": "A@example.fr", "password": PASSWORD})
    assert ok.status == 200
    assert (await client.get("/api/me")).status == 200
    assert (await client.post("/api/auth/logout")).status == 204
    assert (await client.get("/api/me")).status == 401


async def test_login_is_throttled_per_account(make_client: MakeClient) -> None:
    await make_client().register(email="a@example.fr", first_name="A", last_name="B")
    client = make_client()
    for _ in range(5):
        reply = await client.post(
            "/api/auth/login", {"email": "a@example.fr", "password": "x" * 10}
        )
        assert reply.status == 401
    blocked = await client.post("/api/auth/login", {"email": "a@example.fr", "password": PASSWORD})
    assert blocked.status == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Trop de tentatives" in blocked.body["detail"]
    async with client.services.sessionmaker() as db:
        actions = list(await db.scalars(select(AuditEvent.action)))
    assert actions.count("auth.login_failed") == 5 and "auth.login_throttled" in actions


async def test_throttle_lifts_after_the_window(make_client: MakeClient, clock: FakeClock) -> None:
    await make_client().register(email="a@example.fr", first_name="A", last_name="B")
    client = make_client()
    for _ in range(5):
        await client.post("/api/auth/login", {"email": "a@example.fr", "password": "x" * 10})
    assert (
        await client.post("/api/auth/login", {"email": "a@example.fr", "password": PASSWORD})
    ).status == 429
    clock.advance(timedelta(minutes=16))
    assert (
        await client.post("/api/auth/login", {"email": "a@example.fr", "password": PASSWORD})
    ).status == 200


async def test_idle_and_absolute_session_expiry(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client()
    await client.register(email="a@example.fr", first_name="A", last_name="B")
    clock.advance(timedelta(hours=11))
    assert (await client.get("/api/me")).status == 200  # activity pushes the idle deadline
    clock.advance(timedelta(hours=11))
    assert (await client.get("/api/me")).status == 200
    clock.advance(timedelta(hours=12, minutes=1))
    idle = await client.get("/api/me")
    assert idle.status == 401 and "expiré" in idle.body["detail"]
    await client.post("/api/auth/login", {"email": "a@example.fr", "password": PASSWORD})
    for _ in range(16):  # active every 11 hours (176 h), yet the session ends after 7 days
        clock.advance(timedelta(hours=11))
        await client.get("/api/me")
    assert (await client.get("/api/me")).status == 401


async def test_register_is_rate_limited_per_address(make_client: MakeClient) -> None:
    client = make_client()
    statuses = []
    for i in range(21):
        reply = await client.post(
            "/api/auth/register",
            {
                "email": f"p{i}@example.fr",
                "password": PASSWORD,
                "first_name": "A",
                "last_name": "B",
            },
        )
        statuses.append(reply.status)
    assert statuses[:20] == [201] * 20 and statuses[20] == 429
