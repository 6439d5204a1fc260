"""Call signaling over socket.io: join, relay of SDP and ICE between the peers of one call only,
quality samples, leave. Every relay checks that sender and receiver are active peers of the same
call; nothing crosses calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal

import socketio
from pydantic import BaseModel, ConfigDict, Field

from media.sfu import SFU_PEER, SfuCalls
from server.calls import lifecycle, quality, service
from server.calls.quality import DeviceCheck
from server.calls.turn import ice_servers
from server.errors import InvalidInput, NotAuthenticated, NotFound, TooLarge
from server.events import call_room, peer_room
from server.http.serialize import person_json
from server.models import Call, CallPeer, User
from server.services import Services
from signaling.events import SocketEvents, parse
from signaling.media_router import MediaRouter
from signaling.sessions import SESSION_EXPIRED

log = logging.getLogger("teleconsult.signaling.call_events")

MAX_SDP = 64 * 1024


class Offer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class JoinBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_id: str = Field(min_length=1, max_length=64)
    # From the device check: connected, nothing sent until ``call:ready``.
    waiting: bool = False
    # A connection the page prepared while it loaded: handed to the first participant already
    # in a peer-to-peer call (``offered_to`` in the reply), who answers it at once.
    offer: Offer | None = None


class ReadyBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    call_id: str = Field(min_length=1, max_length=64)


class SignalBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    call_id: str = Field(min_length=1, max_length=64)
    to: str = Field(min_length=1, max_length=64)
    description: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None


class StatsBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    call_id: str = Field(min_length=1, max_length=64)
    stats: dict[str, Any]
    # The connection the sample is about: the other peer's id, or "sfu".
    about: str | None = Field(default=None, max_length=64)


class MediaBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    call_id: str = Field(min_length=1, max_length=64)
    camera: bool
    microphone: bool
    # Paused by the page itself on a poor link (the sound kept).
    video_paused: bool = False


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    call_id: str = Field(min_length=1, max_length=64)
    check: DeviceCheck


NO_PEER = "Participant introuvable dans cet appel."

SAMPLE_MAX = 4096


class CallSignaling:
    """The socket.io side of calls. Each handler parses, authorizes through the domain
    (``server/calls/``), then relays; every relay checks that sender and receiver are peers of
    the same call. Events go through ``SocketEvents`` (rate limit, live session, one error
    format)."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        services_of_app: Callable[[], Services],
        events: SocketEvents,
        *,
        redis_url: str | None = None,
    ) -> None:
        self._sio = sio
        self._services_of_app = services_of_app
        self._events = events
        self._pending: set[asyncio.Task[None]] = set()
        # Where the SFU side of calls in ``mode:"sfu"`` runs: a media node, here, or, with
        # ``redis_url``, in the process that claimed the call.
        self.sfu = MediaRouter(
            sio,
            SfuCalls(self._send_from_sfu),
            lambda: services_of_app().settings.secret_key or "",
            redis_url,
        )
        events.on("call:join", self.join)
        events.on("call:signal", self.signal)
        events.on("call:ready", self.ready)
        events.on("call:stats", self.stats)
        events.on("call:check", self.check)
        events.on("call:media", self.media)
        events.on("call:leave", self.leave)
        sio.on("disconnect", self.disconnect)

    # -- events ------------------------------------------------------------------------------

    async def join(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        body = parse(JoinBody, data)
        found = await self._events.sessions.live_user(sid)
        if found is None:
            raise NotAuthenticated(SESSION_EXPIRED)
        services, user = found
        session = await self._sio.get_session(sid)
        # The join authorizes (a participant of this call, or 404) before the socket enters
        # any room of the call.
        async with services.sessionmaker() as db:
            user = await db.merge(user, load=False)
            joined = await service.join(
                db, services, user, body.call_id, sid, ip=session.get("ip"), waiting=body.waiting
            )
            call = await db.get(Call, body.call_id)  # loaded by the join: no query
            mode = call.mode if call is not None else "p2p"
        peer, others = joined.peer, joined.others
        for old in joined.replaced:
            await self._replaced(services, old, peer)
        await self._enter(sid, body.call_id, peer.id, sfu=mode == "sfu")
        await self._sio.emit(
            "call:peer-joined",
            {
                "call_id": body.call_id,
                "peer_id": peer.id,
                "user": person_json(user),
                "waiting": peer.ready_at is None,
            },
            room=call_room(body.call_id),
            skip_sid=sid,
        )
        offered_to = lifecycle.offer_target(others) if mode == "p2p" and body.offer else None
        if offered_to is not None and body.offer is not None:
            # After call:peer-joined, on the same socket: they know who is offering.
            await self._sio.emit(
                "call:signal",
                {"call_id": body.call_id, "from": peer.id, "description": body.offer.model_dump()},
                room=peer_room(body.call_id, offered_to),
            )
        if mode == "sfu":
            # After this answer has gone out: the page starts its connection anew on it, then
            # takes the server's offer.
            self._later(self.sfu.join(body.call_id, peer.id, sid))
        settings = services.settings
        return {
            "ok": True,
            "mode": mode,
            "peer_id": peer.id,
            "offered_to": offered_to,
            "peers": [
                {"peer_id": p.id, "user": person_json(u), "waiting": p.ready_at is None}
                for p, u in others
            ],
            "ice_servers": ice_servers(
                settings.turn_urls, settings.turn_secret, user.id, services.clock.now()
            ),
        }

    async def signal(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        body = parse(SignalBody, data)
        # A null candidate is meaningful (end of candidates): look at the keys, not values.
        if ("description" in data) == ("candidate" in data):
            raise InvalidInput("Un seul de description ou candidate est attendu.")
        if body.description is not None and len(str(body.description.get("sdp", ""))) > MAX_SDP:
            raise TooLarge("La description de session est trop longue.")
        session = await self._sio.get_session(sid)
        sender_id = (session.get("peers") or {}).get(body.call_id)
        if body.to == SFU_PEER:
            if sender_id is None or body.call_id not in session.get("sfu_calls", []):
                raise NotFound(NO_PEER)
            try:
                await self.sfu.signal(
                    body.call_id,
                    sender_id,
                    body.description,
                    body.candidate,
                    has_candidate="candidate" in data,
                )
            except Exception as exc:  # a description or candidate aiortc cannot use
                log.warning("SFU signal from %s refused: %r", sender_id, exc)
                raise InvalidInput("Description ou candidat refusé par le serveur média.") from exc
            return {"ok": True}
        room = peer_room(body.call_id, body.to)
        if sender_id is not None and not self._here(room):
            # Not connected to this process: maybe to another one (Redis), if still in the call.
            services = self._services_of_app()
            async with services.sessionmaker() as db:
                if await service.peer_of(db, body.call_id, body.to) is None:
                    sender_id = None
        if sender_id is None:
            # Same answer whether the call, the sender or the target is unknown or elsewhere.
            raise NotFound(NO_PEER)
        payload: dict[str, Any] = {"call_id": body.call_id, "from": sender_id}
        if body.description is not None:
            payload["description"] = body.description
        else:
            payload["candidate"] = body.candidate
        await self._sio.emit("call:signal", payload, room=room)
        return {"ok": True}

    async def ready(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        body = parse(ReadyBody, data)
        services = self._services_of_app()
        async with services.sessionmaker() as db:
            peer = await service.ready(db, services, body.call_id, sid)
        if peer is None:
            raise NotFound(NO_PEER)
        await self._sio.emit(
            "call:peer-ready",
            {"call_id": body.call_id, "peer_id": peer.id},
            room=call_room(body.call_id),
            skip_sid=sid,
        )
        return {"ok": True}

    async def stats(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        body = parse(StatsBody, data)
        if len(str(body.stats)) > SAMPLE_MAX:
            raise TooLarge("L'échantillon de qualité est trop gros.")
        services = self._services_of_app()
        async with services.sessionmaker() as db:
            peer = await service.active_peer_for_sid(db, body.call_id, sid)
            if peer is None:
                raise NotFound(NO_PEER)
            samples = [service.page_sample(body.stats, body.about)]
            if body.call_id in (await self._sio.get_session(sid)).get("sfu_calls", []):
                # The server's own figures of what it forwarded to this page: they, not the
                # page's, prove the video in an SFU call.
                tracks = await self.sfu.stats(body.call_id)
                samples += service.forwarded_samples(peer.id, tracks)
            await service.record_stats(db, services, peer, samples)
            recent = await service.recent_page_samples(db, peer, samples[0]["about"])
            summary = quality.quality(recent)
            changed = await self._quality_changed(sid, body.call_id, body.about, summary)
            if changed:
                pros = await service.professional_peers(db, body.call_id, besides=peer.id)
                user = await db.get_one(User, peer.user_id)
        if changed and summary is not None:
            payload = {
                "call_id": body.call_id,
                "peer_id": peer.id,
                "user": person_json(user),
                "quality": summary,
            }
            for pro in pros:
                await self._sio.emit(
                    "call:peer-quality", payload, room=peer_room(body.call_id, pro)
                )
        return {"ok": True}

    async def _quality_changed(
        self, sid: str, call_id: str, about: str | None, summary: dict[str, Any] | None
    ) -> bool:
        """Whether this page's worst level over its connections changed with this sample: the
        professionals are told of changes, not of every sample."""
        if summary is None:
            return False
        session = await self._sio.get_session(sid)
        levels = session.setdefault("quality", {}).setdefault(call_id, {})
        before = max((quality.LEVELS.index(v) for v in levels.values()), default=0)
        levels[about or ""] = summary["level"]
        after = max(quality.LEVELS.index(v) for v in levels.values())
        await self._sio.save_session(sid, session)
        summary["level"] = quality.LEVELS[after]
        summary["words"] = quality.LEVEL_WORDS[quality.LEVELS[after]]
        return after != before

    async def media(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        """What the others will not see or hear of this page, and why: their tiles say it."""
        body = parse(MediaBody, data)
        sender_id = ((await self._sio.get_session(sid)).get("peers") or {}).get(body.call_id)
        if sender_id is None:
            raise NotFound(NO_PEER)
        await self._sio.emit(
            "call:peer-media",
            {"peer_id": sender_id, **body.model_dump()},
            room=call_room(body.call_id),
            skip_sid=sid,
        )
        return {"ok": True}

    async def check(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        """The page's device check: kept, and shown to the professionals in the call."""
        body = parse(CheckBody, data)
        services = self._services_of_app()
        found = body.check.model_dump()
        async with services.sessionmaker() as db:
            peer = await service.active_peer_for_sid(db, body.call_id, sid)
            if peer is None:
                raise NotFound(NO_PEER)
            await service.record_check(db, services, peer, found)
            pros = await service.professional_peers(db, body.call_id, besides=peer.id)
            user = await db.get_one(User, peer.user_id)
        payload = {
            "call_id": body.call_id,
            "peer_id": peer.id,
            "user": person_json(user),
            "check": {**found, "problems": quality.problems_of_check(found)},
        }
        for pro in pros:
            await self._sio.emit("call:peer-check", payload, room=peer_room(body.call_id, pro))
        return {"ok": True}

    async def leave(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        call_id = parse(ReadyBody, data).call_id
        services = self._services_of_app()
        async with services.sessionmaker() as db:
            peer = await service.active_peer_for_sid(db, call_id, sid)
            if peer is None:
                return {"ok": True}
            empty = await service.leave(db, services, peer)
        # A page that leaves often closes at once: its socket may be gone by now, and its
        # disconnect found nothing left to do, so the others must still be told below.
        with contextlib.suppress(KeyError):
            await self._exit(sid, call_id, peer.id)
        await self._left(services, peer, empty)
        return {"ok": True}

    async def disconnect(self, sid: str, *_: Any) -> None:
        services = self._services_of_app()
        try:
            async with services.sessionmaker() as db:
                for peer in await service.peers_of_sid(db, sid):
                    empty = await service.leave(db, services, peer)
                    await self._left(services, peer, empty)
        except Exception:
            # A lost socket must not leave the others waiting for a ghost: log, and let the
            # empty-call check or the doctor's "end" settle the call.
            log.exception("could not mark the peers of socket %s as left", sid)
        finally:
            self._events.forget(sid)

    # -- rooms and announcements -------------------------------------------------------------

    async def _enter(self, sid: str, call_id: str, peer_id: str, *, sfu: bool) -> None:
        await self._sio.enter_room(sid, call_room(call_id))
        await self._sio.enter_room(sid, peer_room(call_id, peer_id))
        # Remember which peer this socket is in each call: relaying its signals then needs no
        # database round trip.
        session = await self._sio.get_session(sid)
        session.setdefault("peers", {})[call_id] = peer_id
        if sfu:
            session.setdefault("sfu_calls", []).append(call_id)
        await self._sio.save_session(sid, session)

    async def _exit(self, sid: str, call_id: str, peer_id: str) -> None:
        await self._sio.leave_room(sid, call_room(call_id))
        await self._sio.leave_room(sid, peer_room(call_id, peer_id))
        session = await self._sio.get_session(sid)
        (session.get("peers") or {}).pop(call_id, None)
        await self._sio.save_session(sid, session)

    def _here(self, room: str) -> bool:
        return next(self._sio.manager.get_participants("/", room), None) is not None

    async def _replaced(self, services: Services, old: CallPeer, new: CallPeer) -> None:
        """The person came back on another socket: their old page is told to stop (wherever
        it is), leaves the call's rooms if it is here, and the others drop its connection now."""
        await self._sio.emit(
            "call:replaced",
            {"call_id": old.call_id, "peer_id": old.id, "by": new.id},
            # Its own socket's room, which it never leaves (over Redis, the delivery may come
            # after the socket has left the call's rooms below).
            to=old.sid,
        )
        with contextlib.suppress(KeyError):
            await self._exit(old.sid, old.call_id, old.id)
        await self._left(services, old, empty=False, replaced=True)

    async def _left(
        self, services: Services, peer: CallPeer, empty: bool, *, replaced: bool = False
    ) -> None:
        """After a participant left: the record keeps what the server forwarded of them, the
        others are told, and an empty call ends after its grace unless someone comes back."""
        tracks = await self.sfu.leave(peer.call_id, peer.id)
        if tracks:
            async with services.sessionmaker() as db:
                await service.record_forwarding(db, services, peer, tracks)
        await self._sio.emit(
            "call:peer-left",
            # ``replaced``: the same person is back on another connection (not a departure).
            {"call_id": peer.call_id, "peer_id": peer.id, "replaced": replaced},
            room=call_room(peer.call_id),
        )
        if empty:
            self._later(self._end_when_still_empty(peer.call_id))

    async def _end_when_still_empty(self, call_id: str) -> None:
        services = self._services_of_app()
        await asyncio.sleep(lifecycle.EMPTY_CALL_GRACE.total_seconds())
        async with services.sessionmaker() as db:
            if await lifecycle.end_if_still_empty(db, services, call_id):
                await self._sio.emit("call:ended", {"call_id": call_id}, room=call_room(call_id))

    async def _send_from_sfu(self, call_id: str, peer_id: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(
            "call:signal",
            {"call_id": call_id, "from": SFU_PEER, **payload},
            room=peer_room(call_id, peer_id),
        )

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)  # keep a reference until it is done
        task.add_done_callback(self._pending.discard)
