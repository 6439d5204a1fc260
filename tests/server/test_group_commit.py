"""Group commit: posts written together in one transaction say what they would have said one
after the other, and one post that breaks the batch does not take the others down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from server.conversations.group_commit import MessageWriter, SignedPost, write_signed_posts
from server.conversations.keys import MESSAGE_WRITER
from server.conversations.model import NewMessage, Posted
from server.errors import AppError, Forbidden, InvalidInput, NotAuthenticated, NotFound
from server.models import AuditEvent, Message, ReadMark, new_id
from tests.helpers import Client, connect

MakeClient = Callable[[], Client]


def token(client: Client) -> str:
    cookie = client.session.cookie_jar.filter_cookies(client.server.make_url("/"))["tc_session"]
    return cookie.value


def new(client_id: str, body: str = "Bonjour", **kw: object) -> NewMessage:
    return NewMessage(client_id=client_id, body=body, **kw)  # type: ignore[arg-type]


async def test_one_batch_says_what_posts_one_by_one_would_say(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="Sam", last_name="S")
    d, p, s = token(doctor), token(patient), token(stranger)
    batch = [
        SignedPost(d, cid, new("a", "Voici vos résultats", reply_allowed=False), "1.1.1.1"),
        SignedPost(p, cid, new("b", "Merci"), None),  # refused by the message just before
        SignedPost(d, cid, new("a", "Voici vos résultats", reply_allowed=False), None),  # retry
        SignedPost(d, cid, new("c", "Des questions ?"), None),
        SignedPost(p, cid, new("d", "Oui, une"), None),  # now allowed
        SignedPost("not-a-session", cid, new("e"), None),
        SignedPost(s, cid, new("f"), None),  # not a member
        SignedPost(d, new_id(), new("g"), None),  # no such conversation
        SignedPost(d, cid, new("h", "   "), None),  # empty
        SignedPost(d, cid, NewMessage("i", "x", attachment_ids=("nope",)), None),
    ]
    services = doctor.services
    async with services.sessionmaker() as db:
        outcomes = await db.run_sync(write_signed_posts, services.clock, batch)
        await db.commit()

    def posted(i: int) -> Posted:
        outcome = outcomes[i]
        assert isinstance(outcome, Posted), outcome
        return outcome

    def refused(i: int) -> AppError:
        outcome = outcomes[i]
        assert isinstance(outcome, AppError), outcome
        return outcome

    assert [posted(i).view.message.seq for i in (0, 3, 4)] == [1, 2, 3]
    assert all(posted(i).created for i in (0, 3, 4))
    assert isinstance(refused(1), Forbidden) and refused(1).extra["code"] == "reply_not_allowed"
    assert posted(2).created is False and posted(2).view.message.id == posted(0).view.message.id
    assert isinstance(refused(5), NotAuthenticated)
    assert isinstance(refused(6), NotFound) and isinstance(refused(7), NotFound)
    assert isinstance(refused(8), InvalidInput) and isinstance(refused(9), InvalidInput)
    assert posted(4).members >= {doctor.user["id"], patient.user["id"]}  # type: ignore[index]

    history = await patient.get(f"/api/conversations/{cid}/messages")
    assert [(m["seq"], m["body"]) for m in history.body["items"]] == [
        (1, "Voici vos résultats"),
        (2, "Des questions ?"),
        (3, "Oui, une"),
    ]
    async with services.sessionmaker() as db:
        marks = dict((await db.execute(select(ReadMark.user_id, ReadMark.last_read_seq))).all())
        assert marks[doctor.user["id"]] == 2  # type: ignore[index]
        audited = await db.scalars(
            select(AuditEvent.ip)
            .where(AuditEvent.action == "message.posted")
            .order_by(AuditEvent.at)
        )
        assert sorted(ip or "" for ip in audited) == ["", "", "1.1.1.1"]


async def test_a_post_that_breaks_its_batch_does_not_take_the_others_down(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    other = make_client()
    await other.register(email="o@example.fr", first_name="Odile", last_name="O")
    other_cid = await connect(doctor, other)
    services = doctor.services
    # A row the checks cannot foresee: seq 1 of the first conversation is already taken, so
    # inserting the batch fails on the database's unique constraint.
    async with services.sessionmaker() as db:
        db.add(
            Message(
                id=new_id(),
                conversation_id=cid,
                seq=1,
                author_id=doctor.user["id"],  # type: ignore[index]
                client_id="planted",
                body="x",
                reply_allowed=True,
                created_at=datetime.now(UTC),
            )
        )
        await db.commit()
    writer = MessageWriter(services.sessionmaker, services.clock)
    writer.start()
    try:
        d = token(doctor)
        results = await asyncio.gather(
            writer.post(SignedPost(d, cid, new("1"), None)),
            writer.post(SignedPost(d, other_cid, new("2"), None)),
            writer.post(SignedPost(d, other_cid, new("3"), None)),
            return_exceptions=True,
        )
    finally:
        await writer.close()
    assert not isinstance(results[0], Posted)  # its own failure, reported to it alone
    assert [r.view.message.seq for r in results[1:] if isinstance(r, Posted)] == [1, 2]
    async with services.sessionmaker() as db:
        count = select(func.count(Message.id)).where(Message.conversation_id == other_cid)
        assert await db.scalar(count) == 2


async def test_the_server_writer_batches_concurrent_posts(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    writer = doctor.server.app[MESSAGE_WRITER]
    sends = [
        doctor.post(f"/api/conversations/{cid}/messages", {"client_id": f"d{i}", "body": f"d{i}"})
        for i in range(30)
    ]
    replies = await asyncio.gather(*sends)
    assert sorted(r.body["seq"] for r in replies) == list(range(1, 31))
    # Thirty requests at once did not take thirty transactions.
    assert writer.batches < 30


async def test_a_retry_in_an_optimistic_batch_leaves_no_gap(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    first = await doctor.post(f"/api/conversations/{cid}/messages", {"client_id": "a", "body": "1"})
    assert first.status == 201
    services = doctor.services
    writer = MessageWriter(services.sessionmaker, services.clock)
    writer.start()
    try:
        d = token(doctor)
        # Queued together: one batch, written without checking for retries first; the retry is
        # noticed at the insert and the batch is written again, checking.
        again, fresh = await asyncio.gather(
            writer.post(SignedPost(d, cid, new("a", "1"), None)),
            writer.post(SignedPost(d, cid, new("b", "2"), None)),
        )
    finally:
        await writer.close()
    assert writer.batches == 1
    assert (again.created, again.view.message.id) == (False, first.body["id"])
    assert (fresh.created, fresh.view.message.seq) == (True, 2)
