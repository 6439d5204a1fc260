"""Call domain logic: start, access, join, leave, end, invite a nurse, record quality samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.calls import proof
from server.clock import PARIS
from server.conversations.service import ConversationView, find_conversation, visible_to
from server.conversations.service import member_ids as member_ids
from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.models import (
    Call,
    CallEvent,
    CallPeer,
    CallStatus,
    Conversation,
    ConversationParticipant,
    Role,
    User,
    new_id,
)
from server.notify import queue
from server.services import Services

# A call nobody is in any more ends after this delay (a reload or a network change comes back
# well within it).
# Quality samples kept per peer: one per other participant (or per forwarded publisher in SFU
# calls) every 5 s, a 45-minute call with four others.
MAX_STATS_PER_PEER = 2200


async def _lock_call(db: AsyncSession, call_id: str) -> None:
    """Lock the call row before touching its peers. Every change to a call takes this lock
    first, so two changes (a leave and an end) queue instead of deadlocking on PostgreSQL
    (SQLite's BEGIN IMMEDIATE serializes them already)."""
    await db.execute(select(Call.id).where(Call.id == call_id).with_for_update())


@dataclass(frozen=True)
class CallView:
    call: Call
    conversation: Conversation
    peers: list[tuple[CallPeer, User]]


def _event(
    db: AsyncSession,
    services: Services,
    call_id: str,
    kind: str,
    *,
    user_id: str | None = None,
    peer_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    db.add(
        CallEvent(
            call_id=call_id,
            at=services.clock.now(),
            kind=kind,
            user_id=user_id,
            peer_id=peer_id,
            data=data,
        )
    )


async def start_call(
    db: AsyncSession,
    services: Services,
    user: User,
    conversation_id: str,
    mode: str,
    *,
    ip: str | None,
) -> tuple[Call, ConversationView]:
    if not user.role_enum.is_professional or user.role == Role.SECRETARY:
        raise Forbidden("Seul un médecin ou un infirmier peut lancer une vidéo.")
    view = await find_conversation(db, user, conversation_id)
    if mode == "sfu" and not services.settings.sfu:
        raise InvalidInput("mode : le relais vidéo du serveur (SFU) est désactivé (TC_SFU=off)")
    existing = await db.scalar(
        select(Call).where(Call.conversation_id == conversation_id, Call.status != CallStatus.ENDED)
    )
    if existing is not None:
        # A second click on the camera button joins the call already under way.
        return existing, view
    call = Call(
        conversation_id=conversation_id,
        created_by_id=user.id,
        mode=mode,
        status=CallStatus.RINGING,
        created_at=services.clock.now(),
    )
    db.add(call)
    await db.flush()
    _event(db, services, call.id, "created", user_id=user.id, data={"mode": mode})
    audit.record(
        db,
        services.clock,
        "call.started",
        actor_id=user.id,
        ip=ip,
        resource_type="call",
        resource_id=call.id,
        details={"conversation_id": conversation_id},
    )
    return call, view


async def access_call(
    db: AsyncSession, user: User, call_id: str, *, lock: bool = False
) -> tuple[Call, ConversationView]:
    """The call if the user may be in it: a member of its conversation, or its invited nurse.
    Otherwise NotFound, whether it exists or not. ``lock`` reads it locked (as ``_lock_call``)
    and fresh, in the same statement."""
    if lock:
        call = await db.scalar(
            select(Call)
            .where(Call.id == call_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        call = await db.get(Call, call_id)
    if call is None:
        raise NotFound("Appel introuvable.")
    if call.nurse_id is not None and call.nurse_id == user.id:
        conversation = await db.get_one(Conversation, call.conversation_id)
        patient = await db.get_one(User, conversation.patient_id)
        practitioner = await db.get_one(User, conversation.practitioner_id)
        return call, ConversationView(conversation, patient, practitioner)
    try:
        view = await find_conversation(db, user, call.conversation_id)
    except NotFound:
        raise NotFound("Appel introuvable.") from None
    return call, view


async def call_has_ended(db: AsyncSession, user: User, call_id: str) -> bool:
    """Whether this user's call is over (False for one they may not see: the page says so)."""
    try:
        call, _ = await access_call(db, user, call_id)
    except NotFound:
        return False
    return call.status == CallStatus.ENDED


async def call_view(db: AsyncSession, call: Call, conversation: Conversation) -> CallView:
    rows = (
        await db.execute(
            select(CallPeer, User)
            .join(User, User.id == CallPeer.user_id)
            .where(CallPeer.call_id == call.id)
            .order_by(CallPeer.joined_at)
        )
    ).all()
    return CallView(call, conversation, [(p, u) for p, u in rows])


@dataclass(frozen=True)
class Joined:
    peer: CallPeer
    others: list[tuple[CallPeer, User]]  # everyone else in the call
    replaced: list[CallPeer]  # the person's previous connection, now gone


async def join(
    db: AsyncSession,
    services: Services,
    user: User,
    call_id: str,
    sid: str,
    *,
    ip: str | None,
    waiting: bool = False,
) -> Joined:
    """Enter the call. ``waiting``: from the device check, so that the connections are made
    while the participant looks at their preview; nothing of theirs is sent before ``ready``."""
    # Locked first: a join and a leave or an end of the same call queue instead of crossing.
    call, _ = await access_call(db, user, call_id, lock=True)
    if call.status == CallStatus.ENDED:
        raise Conflict("Cet appel est terminé.")
    now = services.clock.now()
    active = (
        await db.execute(
            select(CallPeer, User)
            .join(User, User.id == CallPeer.user_id)
            .where(CallPeer.call_id == call.id, CallPeer.left_at.is_(None))
            .order_by(CallPeer.joined_at, CallPeer.id)
        )
    ).all()
    # Joining again from the same socket is the same peer (idempotent).
    same = next((p for p, _ in active if p.sid == sid), None)
    if same is not None:
        others = [(p, u) for p, u in active if p is not same]
        if not waiting and same.ready_at is None:
            _mark_ready(db, services, call, same, others, now)
            await db.commit()
        return Joined(same, others, [])
    # One participant per person: a reload, a network change or another tab of theirs is a new
    # socket, which takes the place of their connection at once (the old one would otherwise
    # stay "in the call" until its socket times out).
    replaced = [p for p, _ in active if p.user_id == user.id]
    others = [(p, u) for p, u in active if p.user_id != user.id]
    peer = CallPeer(id=new_id(), call_id=call.id, user_id=user.id, sid=sid, joined_at=now)
    for old in replaced:
        old.left_at = now
        _event(
            db,
            services,
            call.id,
            "replaced",
            user_id=user.id,
            peer_id=old.id,
            data={"by": peer.id},
        )
    db.add(peer)
    call.empty_since = None
    if waiting:
        _event(db, services, call.id, "waiting", user_id=user.id, peer_id=peer.id)
    else:
        _mark_ready(db, services, call, peer, others, now)
    audit.record(
        db,
        services.clock,
        "call.joined",
        actor_id=user.id,
        ip=ip,
        resource_type="call",
        resource_id=call.id,
    )
    await db.commit()
    return Joined(peer, others, replaced)


def _mark_ready(
    db: AsyncSession,
    services: Services,
    call: Call,
    peer: CallPeer,
    others: list[tuple[CallPeer, User]],
    now: datetime,
) -> None:
    peer.ready_at = now
    if others and call.status == CallStatus.RINGING:
        call.status = CallStatus.ACTIVE
    _event(db, services, call.id, "joined", user_id=peer.user_id, peer_id=peer.id)


async def ready(db: AsyncSession, services: Services, call_id: str, sid: str) -> CallPeer | None:
    """The waiting participant of this socket comes into the call; None if there is none."""
    await _lock_call(db, call_id)
    call = await db.get(Call, call_id, populate_existing=True)
    if call is None or call.status == CallStatus.ENDED:
        return None
    active = (
        await db.execute(
            select(CallPeer, User)
            .join(User, User.id == CallPeer.user_id)
            .where(CallPeer.call_id == call_id, CallPeer.left_at.is_(None))
        )
    ).all()
    peer = next((p for p, _ in active if p.sid == sid), None)
    if peer is None:
        return None
    if peer.ready_at is None:
        _mark_ready(
            db,
            services,
            call,
            peer,
            [(p, u) for p, u in active if p is not peer],
            services.clock.now(),
        )
        await db.commit()
    return peer


async def peer_of(db: AsyncSession, call_id: str, peer_id: str) -> CallPeer | None:
    """An active peer of this call (None for a peer of another call, or one who left)."""
    peer = await db.get(CallPeer, peer_id)
    if peer is None or peer.call_id != call_id or peer.left_at is not None:
        return None
    return peer


async def active_peer_for_sid(db: AsyncSession, call_id: str, sid: str) -> CallPeer | None:
    return await db.scalar(
        select(CallPeer).where(
            CallPeer.call_id == call_id, CallPeer.sid == sid, CallPeer.left_at.is_(None)
        )
    )


async def leave(db: AsyncSession, services: Services, peer: CallPeer) -> bool:
    """Mark a peer gone; True if the call is now empty."""
    await _lock_call(db, peer.call_id)
    now = services.clock.now()
    peer.left_at = now
    _event(db, services, peer.call_id, "left", user_id=peer.user_id, peer_id=peer.id)
    remaining = await db.scalar(
        select(CallPeer.id)
        .where(CallPeer.call_id == peer.call_id, CallPeer.left_at.is_(None), CallPeer.id != peer.id)
        .limit(1)
    )
    call = await db.get_one(Call, peer.call_id)
    empty = remaining is None
    if empty and call.status != CallStatus.ENDED:
        call.empty_since = now
    await db.commit()
    return empty


async def peers_of_sid(db: AsyncSession, sid: str) -> list[CallPeer]:
    return list(
        await db.scalars(select(CallPeer).where(CallPeer.sid == sid, CallPeer.left_at.is_(None)))
    )


async def end_call(
    db: AsyncSession, services: Services, call: Call, *, user_id: str | None, ip: str | None
) -> list[CallPeer]:
    """End the call; return the peers still in it (to tell them)."""
    await _lock_call(db, call.id)
    await db.refresh(call)
    if call.status == CallStatus.ENDED:
        return []
    now = services.clock.now()
    call.status = CallStatus.ENDED
    call.ended_at = now
    peers = list(
        await db.scalars(
            select(CallPeer).where(CallPeer.call_id == call.id, CallPeer.left_at.is_(None))
        )
    )
    await db.execute(
        update(CallPeer)
        .where(CallPeer.call_id == call.id, CallPeer.left_at.is_(None))
        .values(left_at=now)
        .execution_options(synchronize_session=False)
    )
    _event(db, services, call.id, "ended", user_id=user_id)
    audit.record(
        db,
        services.clock,
        "call.ended",
        actor_id=user_id,
        ip=ip,
        resource_type="call",
        resource_id=call.id,
    )
    await db.commit()
    return peers


async def invite_nurse(
    db: AsyncSession,
    services: Services,
    user: User,
    call_id: str,
    nurse_id: str,
    assistance: str,
    *,
    place: str | None = None,
    ip: str | None,
) -> Call:
    call, view = await access_call(db, user, call_id)
    if not user.role_enum.is_professional:
        raise Forbidden("Seul un professionnel peut ajouter un infirmier à l'appel.")
    if call.status == CallStatus.ENDED:
        raise Conflict("Cet appel est terminé.")
    nurse = await db.get(User, nurse_id)
    if nurse is None or nurse.role != Role.NURSE or not nurse.is_active:
        raise NotFound("Infirmier introuvable.")
    if call.nurse_id != nurse.id:  # the nurse gets the join link, once
        queue.nurse_invited(db, services.clock.now(), call.id, nurse.id)
    call.nurse_id = nurse.id
    call.assistance = assistance
    call.assistance_place = place
    # The nurse also joins the conversation, to follow up and see the documents.
    if nurse.id not in await member_ids(db, view.conversation):
        db.add(
            ConversationParticipant(
                conversation_id=call.conversation_id,
                user_id=nurse.id,
                added_by_id=user.id,
                added_at=services.clock.now(),
            )
        )
    _event(
        db,
        services,
        call.id,
        "nurse_invited",
        user_id=user.id,
        data={"nurse_id": nurse.id, "assistance": assistance, "place": place},
    )
    audit.record(
        db,
        services.clock,
        "call.nurse_invited",
        actor_id=user.id,
        ip=ip,
        resource_type="call",
        resource_id=call.id,
        details={"nurse_id": nurse.id},
    )
    await db.commit()
    return call


def page_sample(stats: dict[str, Any], about: str | None) -> dict[str, Any]:
    """A page's quality sample, about one of its connections (``about``: the other peer, or
    ``"sfu"``). Marked as the page's whatever it claims: only the server writes ``server``."""
    return {**stats, "about": about, "source": "page"}


def forwarded_samples(peer_id: str, tracks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SFU calls: what the server itself forwarded to ``peer_id`` of each other participant's
    video, as samples about that participant. Frames count once the peer's receiver reports on
    the stream (RTCP receiver reports: it is running and receiving); until then, none."""
    samples = []
    for track in tracks:
        if track.get("kind") != "video" or track.get("publisher_id") == peer_id:
            continue
        figures = (track.get("subscribers") or {}).get(peer_id)
        if not isinstance(figures, dict):
            continue
        reported = "packets_lost" in figures
        samples.append(
            {
                "about": track["publisher_id"],
                "source": "server",
                "video_in": {
                    "frames_decoded": int(figures.get("frames") or 0) if reported else 0,
                    "packets_lost": figures.get("packets_lost"),
                },
                "rtt_ms": figures.get("round_trip_ms"),
            }
        )
    return samples


async def record_stats(
    db: AsyncSession, services: Services, peer: CallPeer, samples: list[dict[str, Any]]
) -> None:
    """Keep the samples of one round (5 s) of a peer. A sample about someone who is not a peer
    of this call loses its ``about``: it proves nothing."""
    count = await db.scalar(
        select(func.count(CallEvent.id)).where(
            CallEvent.peer_id == peer.id, CallEvent.kind == "stats"
        )
    )
    if (count or 0) + len(samples) > MAX_STATS_PER_PEER:
        return
    others = set(
        await db.scalars(
            select(CallPeer.id).where(CallPeer.call_id == peer.call_id, CallPeer.id != peer.id)
        )
    )
    for sample in samples:
        if sample.get("about") not in others and sample.get("about") != "sfu":
            sample = {**sample, "about": None}
        _event(
            db, services, peer.call_id, "stats", user_id=peer.user_id, peer_id=peer.id, data=sample
        )
    await db.commit()


async def record_check(
    db: AsyncSession, services: Services, peer: CallPeer, check: dict[str, Any]
) -> None:
    """Keep what the peer's device check found (the latest one is shown)."""
    _event(db, services, peer.call_id, "check", user_id=peer.user_id, peer_id=peer.id, data=check)
    await db.commit()


async def recent_page_samples(db: AsyncSession, peer: CallPeer, about: str | None) -> list[Any]:
    """The peer's last two page samples about one connection, oldest first (for its quality)."""
    rows = list(
        await db.scalars(
            select(CallEvent)
            .where(CallEvent.peer_id == peer.id, CallEvent.kind == "stats")
            .order_by(CallEvent.at.desc(), CallEvent.id.desc())
            .limit(12)
        )
    )
    mine = [
        e
        for e in rows
        if e.data and e.data.get("source") == "page" and e.data.get("about") == about
    ]
    return mine[:2][::-1]


async def professional_peers(db: AsyncSession, call_id: str, *, besides: str) -> list[str]:
    """Active peers of professionals in the call, but ``besides``: who sees others' trouble."""
    rows = await db.execute(
        select(CallPeer.id, User.role)
        .join(User, User.id == CallPeer.user_id)
        .where(CallPeer.call_id == call_id, CallPeer.left_at.is_(None), CallPeer.id != besides)
    )
    return [peer_id for peer_id, role in rows if role != Role.PATIENT]


async def record_forwarding(
    db: AsyncSession, services: Services, peer: CallPeer, tracks: list[dict[str, Any]]
) -> None:
    """SFU calls: what the server forwarded of this participant, kept in the call record when
    they leave (frames, bytes, per subscriber, keyframe requests)."""
    if not tracks:
        return
    _event(
        db,
        services,
        peer.call_id,
        "forwarded",
        user_id=peer.user_id,
        peer_id=peer.id,
        data={"tracks": tracks},
    )
    await db.commit()


async def timeline(db: AsyncSession, call_id: str) -> list[CallEvent]:
    return list(
        await db.scalars(
            select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.at)
        )
    )


def proof_sides(
    call: Call, conversation: Conversation, coder: User | None
) -> tuple[set[str], set[str]]:
    """Whose video must have crossed, both ways, for ``coder``'s act: the coding professional
    and the patient; for the nurse's own acts (TLS, TLL, TLD), the nurse's side (the nurse and
    the patient) and the doctor. Without a coder (the call's record): the doctor who started it
    and the patient. A nurse in the room with the patient may hold the one device there."""
    if coder is not None and coder.role == Role.NURSE and call.nurse_id == coder.id:
        return {coder.id, conversation.patient_id}, {call.created_by_id}
    patient_side = {conversation.patient_id}
    if call.nurse_id is not None and call.assistance == "in_room":
        patient_side.add(call.nurse_id)
    return {coder.id if coder is not None else call.created_by_id}, patient_side


async def video_proof(
    db: AsyncSession, call: Call, conversation: Conversation, coder: User | None = None
) -> tuple[proof.Proof, bool]:
    """How long the two sides of ``coder``'s act each received the other's video, and whether
    the other side (the patient's, or for a nurse the doctor) ever came into the call."""
    peers = list(await db.scalars(select(CallPeer).where(CallPeer.call_id == call.id)))
    events = await db.scalars(
        select(CallEvent)
        .where(CallEvent.call_id == call.id, CallEvent.kind == "stats")
        .order_by(CallEvent.at)
    )
    samples = [
        sample
        for event in events
        if (sample := proof.sample_of(event.at, event.peer_id, event.data)) is not None
    ]
    side_a, side_b = proof_sides(call, conversation, coder)
    found = proof.video_both_ways(
        samples,
        {p.id: p.user_id for p in peers},
        side_a,
        side_b,
        sfu=call.mode == "sfu",
    )
    came = any(p.user_id in side_b and p.ready_at is not None for p in peers)
    return found, came


async def calls_of_the_day(db: AsyncSession, user: User, now: datetime) -> list[Call]:
    """Calls created today (Europe/Paris) that this user may join: in their conversations, or
    as the invited nurse. Newest first; a nurse's day list and a way back into a closed tab."""
    start = now.astimezone(PARIS).replace(hour=0, minute=0, second=0, microsecond=0)
    visible = select(Conversation.id).where(visible_to(user))
    return list(
        await db.scalars(
            select(Call)
            .where(Call.created_at >= start.astimezone(UTC))
            .where(or_(Call.nurse_id == user.id, Call.conversation_id.in_(visible)))
            .order_by(Call.created_at.desc())
            .limit(100)
        )
    )
