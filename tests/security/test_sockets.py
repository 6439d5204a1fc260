"""The socket.io side as an attacker tries it: rooms entered before the check, sockets that
outlive their session, events without data, floods. Each test failed on the code before the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import socketio
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from server import limits
from server.accounts.service import LiveSession, sessions_of
from server.clock import FakeClock
from server.models import AuditEvent, User
from signaling.server import SOCKET_SERVER
from signaling.sessions import SocketSessions
from tests.helpers import Client, connect
from tests.signaling.sockets import Tab

MakeClient = Callable[[], Client]
Tabs = Callable[[Client], Tab]

# Events that answer ok to anyone because they change nothing for a socket not in the room.
HARMLESS_FOR_OUTSIDERS = {"conversation:unsubscribe", "call:leave"}


async def say(client: Client, cid: str, body: str) -> None:
    reply = await client.post(
        f"/api/conversations/{cid}/messages", {"client_id": body, "body": body}
    )
    assert reply.status == 201, reply


async def stranger(make_client: MakeClient) -> Client:
    client = make_client()
    await client.register(email="sam@example.fr", first_name="Sam", last_name="Stranger")
    return client


async def test_an_outsider_spinning_subscribes_receives_nothing(
    doctor: Client, patient: Client, make_client: MakeClient, tabs: Tabs
) -> None:
    """The audit's room leak: the socket entered the room before the membership check, so
    an outsider repeating refused subscribes got about a third of the messages."""
    cid = await connect(doctor, patient)
    outsider, member = tabs(await stranger(make_client)), tabs(patient)
    await outsider.connect()
    await member.connect()
    assert (await member.subscribe(cid))["ok"]
    statuses: set[int] = set()
    done = asyncio.Event()

    async def spin() -> None:
        while not done.is_set():
            try:
                reply = await outsider.subscribe(cid)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                return  # disconnected for flooding: it receives nothing either way
            assert reply["ok"] is False
            statuses.add(reply["status"])

    spinner = asyncio.create_task(spin())
    for n in range(20):
        await say(doctor, cid, f"message {n}")
    await member.wait_for("message:new", 20)  # the sentinel: every message was delivered
    done.set()
    await spinner
    assert statuses and statuses <= {404, 429}
    assert "message:new" not in outsider.events


async def test_a_subscribe_that_fails_unexpectedly_leaves_no_socket_in_the_room(
    doctor: Client, patient: Client, make_client: MakeClient, tabs: Tabs
) -> None:
    """``after_seq=10**30`` raised a database error after the socket had entered the room,
    which only domain errors left: the socket stayed in it for good."""
    cid = await connect(doctor, patient)
    outsider, member = tabs(await stranger(make_client)), tabs(patient)
    await outsider.connect()
    await member.connect()
    assert (await member.subscribe(cid))["ok"]
    for who in (outsider, member):
        reply = await who.subscribe(cid, after_seq=10**30)
        assert reply["ok"] is False and reply["status"] == 422, reply
        assert reply["errors"] == [{"field": "after_seq", "detail": reply["errors"][0]["detail"]}]
    await say(doctor, cid, "après")
    await member.wait_for("message:new")
    assert "message:new" not in outsider.events


async def test_every_event_without_data_gets_a_clear_refusal(
    server: TestServer, patient: Client, tabs: Tabs
) -> None:
    """Events sent with no data crashed their handler (no reply at all). Generated from the
    server's own handlers, so a new event is covered the day it is added."""
    tab = tabs(patient)
    await tab.connect()
    names = [
        n for n in server.app[SOCKET_SERVER].handlers["/"] if n not in {"connect", "disconnect"}
    ]
    assert {"conversation:subscribe", "call:join", "call:signal"} <= set(names)
    for name in names:
        for data in ((), ("texte",), ([1, 2],)):
            reply = await tab.sio.call(name, *data, timeout=5)
            assert reply["ok"] is False and reply["status"] == 400, (name, data, reply)
            assert reply["detail"] == "Les données de l'événement doivent être un objet."


async def test_outsiders_get_nothing_from_any_socket_event(
    server: TestServer, doctor: Client, patient: Client, make_client: MakeClient, tabs: Tabs
) -> None:
    """Every socket event, sent by a patient with no link to the conversation or the call,
    with the ids of both: nothing is answered ``ok`` but the events that change nothing."""
    cid = await connect(doctor, patient)
    call_id = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body["id"]
    member = tabs(doctor)
    await member.connect()
    joined = await member.sio.call("call:join", {"call_id": call_id}, timeout=5)
    assert joined["ok"]
    outsider = tabs(await stranger(make_client))
    await outsider.connect()
    payload: dict[str, Any] = {
        "conversation_id": cid,
        "call_id": call_id,
        "to": joined["peer_id"],
        "description": {"type": "offer", "sdp": "v=0"},
        "stats": {"rtt_ms": 1},
    }
    names = [
        n for n in server.app[SOCKET_SERVER].handlers["/"] if n not in {"connect", "disconnect"}
    ]
    for name in names:
        reply = await outsider.sio.call(name, payload, timeout=5)
        if name in HARMLESS_FOR_OUTSIDERS:
            continue
        assert reply["ok"] is False and reply["status"] in {404, 422}, (name, reply)
    record = (await doctor.get(f"/api/calls/{call_id}")).body
    assert len(record["participants"]) == 1


async def test_sign_out_closes_the_sessions_sockets(
    doctor: Client, patient: Client, tabs: Tabs
) -> None:
    cid = await connect(doctor, patient)
    tab, witness = tabs(patient), tabs(doctor)
    await tab.connect()
    await witness.connect()
    assert (await tab.subscribe(cid))["ok"] and (await witness.subscribe(cid))["ok"]
    token = next(c.value for c in patient.session.cookie_jar if c.key == "tc_session")
    assert (await patient.post("/api/auth/logout")).status == 204
    await tab.wait_closed()
    [ended] = tab.events["session:ended"]
    assert ended["detail"] == "Vous avez été déconnecté."
    await say(doctor, cid, "après la déconnexion")
    await witness.wait_for("message:new")
    assert "message:new" not in tab.events
    # The old cookie opens no new socket either.
    again = Tab(patient)
    try:
        await again.connect(cookie=token)
        raise AssertionError("a socket opened with the cookie of an ended session")
    except socketio.exceptions.ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            await again.close()


async def test_sign_out_everywhere_lists_and_ends_every_session(
    doctor: Client, patient: Client, make_client: MakeClient, tabs: Tabs
) -> None:
    cid = await connect(doctor, patient)
    phone = make_client()
    phone.user = patient.user
    await phone.login()
    sessions = (await phone.get("/api/auth/sessions")).body["items"]
    assert len(sessions) == 2 and [s["current"] for s in sessions].count(True) == 1
    on_computer, on_phone = tabs(patient), tabs(phone)
    for tab in (on_computer, on_phone):
        await tab.connect()
        assert (await tab.subscribe(cid))["ok"]
    assert (await phone.post("/api/auth/logout-all")).status == 204
    for tab in (on_computer, on_phone):
        await tab.wait_closed()
        assert tab.events["session:ended"][0]["detail"].startswith("Vous avez été déconnecté")
    assert (await patient.get("/api/me")).status == 401
    assert (await phone.get("/api/me")).status == 401
    await patient.login()
    assert len((await patient.get("/api/auth/sessions")).body["items"]) == 1


async def test_a_socket_whose_session_went_idle_is_refused_and_closed(
    doctor: Client, patient: Client, clock: FakeClock, tabs: Tabs
) -> None:
    cid = await connect(doctor, patient)
    tab = tabs(patient)
    await tab.connect()
    assert (await tab.subscribe(cid))["ok"]
    clock.advance(limits.SESSION_IDLE_TIMEOUT + timedelta(minutes=1))
    reply = await tab.subscribe(cid)
    assert reply["ok"] is False and reply["status"] == 401
    await tab.wait_closed()
    assert tab.events["session:ended"][0]["detail"] == "Votre session a expiré. Reconnectez-vous."


async def test_one_socket_flooding_is_refused_then_disconnected_and_audited_once(
    doctor: Client, patient: Client, tabs: Tabs
) -> None:
    """~1,000 subscribes a second from one patient stalled everyone and wrote one audit row
    each. Now a socket's opening of a conversation is audited once, the flood is refused
    before any database work, and the socket that keeps on is disconnected with the reason."""
    cid = await connect(doctor, patient)
    flooder, other = tabs(patient), tabs(doctor)
    await flooder.connect()
    await other.connect()

    async def attempt() -> int:
        try:
            reply = await flooder.sio.call(
                "conversation:subscribe", {"conversation_id": cid}, timeout=3
            )
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
            return 0  # its socket was closed under it
        return int(reply["status"]) if not reply["ok"] else 200

    # A page that subscribes again and again (reconnections, tabs) opens it once in the log.
    for _ in range(30):
        assert (await flooder.subscribe(cid))["ok"]
    statuses = await asyncio.gather(*(attempt() for _ in range(600)))
    assert statuses.count(429) >= 100
    await flooder.wait_closed()
    assert flooder.events["session:ended"][0]["detail"] == (
        "Connexion fermée : trop de requêtes envoyées."
    )
    # The flooder may not come straight back (each attempt would cost a handshake)...
    again = Tab(patient)
    try:
        await again.connect()
        raise AssertionError("a flooder reconnected at once")
    except socketio.exceptions.ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            await again.close()
    # ...while everyone else goes on as usual.
    assert (await other.subscribe(cid))["ok"]
    services = patient.services
    async with services.sessionmaker() as db:
        opened = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "conversation.read",
                AuditEvent.actor_id == patient.user["id"],  # type: ignore[index]
            )
        )
    assert opened == 1


async def test_socket_and_http_refuse_the_same_input_with_the_same_problem(
    doctor: Client, patient: Client, tabs: Tabs
) -> None:
    """One error layer: the same invalid input over socket.io and over HTTP gets the same
    problem object (type, title, status, French detail, errors per field)."""
    cid = await connect(doctor, patient)
    tab = tabs(patient)
    await tab.connect()
    for query, event in (
        ("after_seq=-1", {"conversation_id": cid, "after_seq": -1}),
        ("after_seq=abc", {"conversation_id": cid, "after_seq": "abc"}),
        ("surprise=1", {"conversation_id": cid, "surprise": 1}),
    ):
        over_http = await patient.get(f"/api/conversations/{cid}/messages?{query}")
        over_socket = await tab.sio.call("conversation:subscribe", event, timeout=5)
        assert over_socket.pop("ok") is False
        assert over_socket == over_http.body, (query, over_socket, over_http.body)
        assert over_http.status == 422 and " : " in over_http.body["detail"]
    # and the bounds are said in French
    assert over_http.body["errors"] == [{"field": "surprise", "detail": "champ inconnu"}]
    bound = await patient.get(f"/api/conversations/{cid}/messages?after_seq=-1")
    assert bound.body["detail"] == "after_seq : doit être supérieur ou égal à 0"


async def test_a_connection_whose_session_ends_while_it_connects_is_refused(
    patient: Client,
) -> None:
    """The connection reads the session as live, the session ends (signed out elsewhere), then
    the socket would be registered: it must be refused there, since the ending has already
    looked for that session's sockets and found none to close."""
    services = patient.services
    sessions = SocketSessions(socketio.AsyncServer(async_mode="aiohttp"), lambda: services, None)
    async with services.sessionmaker() as db:
        [row] = await sessions_of(db, services, patient.user["id"])  # type: ignore[index]
        user = await db.get(User, patient.user["id"])  # type: ignore[index]
        assert user is not None
        db.expunge(user)
    live = LiveSession(user, row.id, row.expires_at)
    try:
        await sessions.end([row.id], "Vous avez été déconnecté.")
        assert await sessions.bind("sid-late", live, "cookie-hash") is False
        assert sessions.user_id("sid-late") is None
        # A session that did not end binds as before.
        other = LiveSession(user, "another-session", row.expires_at)
        assert await sessions.bind("sid-ok", other, "cookie-hash-2") is True
        assert sessions.user_id("sid-ok") == user.id
    finally:
        await sessions.close()
