"""SFU calls: the server's end of each participant's one peer connection.

Signaling is the pages' own: ``call:signal`` with ``"sfu"`` as the other peer. The server makes
every offer: at the join (two sections to receive the page's microphone and camera), at once
after its answer (one section to send each track already published), then whenever what this
participant should receive changes (someone publishes, someone leaves); the page answers.
Offering first keeps one numbering of payload types and header extensions for the whole
call, aiortc's: its receiver learns them once, at its start, and would drop the packets of a page
that renumbered them later. The server is the impolite end of perfect negotiation: on glare it
ignores the page's offer (an ICE restart), and the page, polite, rolls its own back and answers
the server's. Codecs are VP8 and Opus, which every browser sends and decodes, so that what one
participant sends, every other can receive as is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from media.forwarding import ForwardedTrack, label_stream
from media.metrics import SfuMetrics
from media.room import Publication, Room

log = logging.getLogger("teleconsult.media.sfu")

SFU_PEER = "sfu"

# (call_id, peer_id, payload of call:signal): how the server's descriptions reach a page.
SendSignal = Callable[[str, str, dict[str, Any]], Awaitable[None]]


@dataclass
class _Participant:
    peer_id: str
    pc: RTCPeerConnection
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Forwarded tracks to add at the next offer, with the publication each comes from.
    to_add: list[tuple[Publication, ForwardedTrack]] = field(default_factory=list)
    to_remove: list[ForwardedTrack] = field(default_factory=list)
    has_remote: bool = False  # a description of the page's has been applied
    early_candidates: list[Any] = field(default_factory=list)


def _preferred_codecs(pc: RTCPeerConnection) -> None:
    for transceiver in pc.getTransceivers():
        kind = transceiver.kind
        wanted = "video/VP8" if kind == "video" else "audio/opus"
        caps = RTCRtpSender.getCapabilities(kind)
        codecs = [c for c in caps.codecs if c.mimeType.lower() == wanted.lower()]
        if codecs:
            transceiver.setCodecPreferences(codecs)


class SfuCalls:
    def __init__(self, send: SendSignal, ice_servers: list[RTCIceServer] | None = None) -> None:
        self._send = send
        self._ice_servers = ice_servers or []
        self._rooms: dict[str, Room] = {}
        self._participants: dict[tuple[str, str], _Participant] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.metrics = SfuMetrics()

    def room(self, call_id: str) -> Room | None:
        return self._rooms.get(call_id)

    def _participant(self, call_id: str, peer_id: str) -> _Participant:
        key = (call_id, peer_id)
        found = self._participants.get(key)
        if found is not None:
            return found
        room = self._rooms.setdefault(call_id, Room(call_id))
        # One transport for everything from the start (as the pages do): aiortc's default,
        # "balanced", gives media sections offered together the transport of the first one of
        # their kind, which the answer then replaces for that one only, and the others stay on
        # a transport that never connects.
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=self._ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        participant = _Participant(peer_id, pc)
        self._participants[key] = participant
        participant.to_add.extend(room.join(peer_id))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(r for r in pc.getReceivers() if r.track is track)
            _, made = room.publish(peer_id, receiver)
            publication = room.publications[-1]
            for other_id, forwarded in made.items():
                other = self._participants.get((call_id, other_id))
                if other is not None:
                    other.to_add.append((publication, forwarded))
                    self._later(self._renegotiate(call_id, other))

        return participant

    def _later(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def signal(
        self,
        call_id: str,
        peer_id: str,
        description: dict[str, Any] | None = None,
        candidate: dict[str, Any] | None = None,
        *,
        has_candidate: bool = False,
    ) -> None:
        """A page's description or ICE candidate for its connection to the server. The server
        offers first (``join``): a signal from a participant it has no connection for (one that
        left, a late candidate) opens nothing."""
        participant = self._participants.get((call_id, peer_id))
        if participant is None:
            log.info("signal from %s, not in SFU call %s: ignored", peer_id, call_id)
            return
        pc = participant.pc
        if description is not None:
            async with participant.lock:
                kind = description.get("type")
                if kind == "offer":
                    if pc.signalingState != "stable":
                        return  # glare: we are the impolite end; the page yields
                    await pc.setRemoteDescription(
                        RTCSessionDescription(sdp=description["sdp"], type="offer")
                    )
                    await self._remote_applied(participant)
                    await pc.setLocalDescription(await pc.createAnswer())
                    await self._send(call_id, peer_id, {"description": self._local(pc)})
                elif kind == "answer" and pc.signalingState == "have-local-offer":
                    await pc.setRemoteDescription(
                        RTCSessionDescription(sdp=description["sdp"], type="answer")
                    )
                    await self._remote_applied(participant)
            if participant.to_add or participant.to_remove:
                await self._renegotiate(call_id, participant)
        elif has_candidate:
            async with participant.lock:  # after the offer it belongs to
                parsed = _candidate(candidate)
                if not participant.has_remote:
                    participant.early_candidates.append(parsed)
                else:
                    await pc.addIceCandidate(parsed)

    @staticmethod
    async def _remote_applied(participant: _Participant) -> None:
        participant.has_remote = True
        for early in participant.early_candidates:
            await participant.pc.addIceCandidate(early)
        participant.early_candidates.clear()

    async def join(self, call_id: str, peer_id: str) -> None:
        """A participant's page is in the call: offer it its connection. A page that joins
        again (``call:sfu-restart``, or a join raced by another) has dropped its connection to
        start anew: so does the server, or the page would wait for an offer that never comes."""
        if (call_id, peer_id) in self._participants:
            await self.leave(call_id, peer_id)
        participant = self._participant(call_id, peer_id)
        participant.pc.addTransceiver("audio", direction="recvonly")
        participant.pc.addTransceiver("video", direction="recvonly")
        await self._renegotiate(call_id, participant, first=True)

    @staticmethod
    def _local(pc: RTCPeerConnection) -> dict[str, str]:
        return {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}

    async def _renegotiate(
        self, call_id: str, participant: _Participant, *, first: bool = False
    ) -> None:
        """Offer the page what it should now receive."""
        pc = participant.pc
        async with participant.lock:
            if pc.signalingState != "stable" or (first and participant.has_remote):
                return  # done when the pending negotiation completes
            if not first and not participant.to_add and not participant.to_remove:
                return
            # The first offer holds the page's own two sections only; what others publish
            # comes in the next one, sent as soon as the page answers. A client offered two
            # sections of one kind in its first description may tie the second to a transport
            # that never connects: aiortc's default bundle policy ("balanced") does, and its
            # receivers then get nothing for the whole call. Once one section of each kind has
            # been negotiated on the bundled transport, later ones join it, in any client.
            adding = [] if first else participant.to_add
            for publication, track in adding:
                # A section of its own (addTrack would take over the page's uplink section).
                sender = pc.addTransceiver(track, direction="sendonly").sender
                label_stream(sender, publication.publisher_id)
                track.attach(sender)
            if not first:
                participant.to_add.clear()
            gone = set(participant.to_remove)
            participant.to_remove.clear()
            for transceiver in pc.getTransceivers():
                if transceiver.sender.track in gone:
                    transceiver.sender.replaceTrack(None)
                    transceiver.direction = (
                        "recvonly" if transceiver.direction == "sendrecv" else "inactive"
                    )
            _preferred_codecs(pc)
            await pc.setLocalDescription(await pc.createOffer())
            await self._send(call_id, participant.peer_id, {"description": self._local(pc)})

    async def leave(self, call_id: str, peer_id: str) -> list[dict[str, object]]:
        """The participant's tracks end for the others, and their connection closes. Returns
        the figures of what was forwarded of them (for the call record)."""
        participant = self._participants.pop((call_id, peer_id), None)
        room = self._rooms.get(call_id)
        figures: list[dict[str, object]] = []
        if room is not None:
            before = await room.stats()
            self.metrics.participant_left(peer_id, before)
            figures = [track for track in before if track["publisher_id"] == peer_id]
            ended = [
                track
                for publication in room.publications
                if publication.publisher_id == peer_id
                for track in publication.subscribers.values()
            ]
            room.leave(peer_id)
            for (cid, _), other in list(self._participants.items()):
                if cid != call_id:
                    continue
                mine = [t for t in ended if any(t is s.track for s in other.pc.getSenders())]
                other.to_add = [(p, t) for p, t in other.to_add if p.publisher_id != peer_id]
                if mine:
                    other.to_remove.extend(mine)
                    self._later(self._renegotiate(call_id, other))
            if not room.participants:
                del self._rooms[call_id]
        if participant is not None:
            await participant.pc.close()
        return figures

    async def reading(self) -> dict[str, object]:
        """This SFU's totals and current flows, over all its calls (``media.metrics``)."""
        live = [track for room in self._rooms.values() for track in await room.stats()]
        return self.metrics.reading(
            live, calls=len(self._rooms), participants=len(self._participants)
        )

    async def end(self, call_id: str) -> None:
        for cid, peer_id in list(self._participants):
            if cid == call_id:
                await self.leave(cid, peer_id)
        self._rooms.pop(call_id, None)

    async def close(self) -> None:
        for call_id in {cid for cid, _ in self._participants}:
            await self.end(call_id)
        for task in list(self._tasks):
            task.cancel()


def _candidate(candidate: dict[str, Any] | None) -> Any:
    """A browser's ``RTCIceCandidateInit`` as aiortc's candidate; None for end of candidates."""
    if not candidate or not candidate.get("candidate"):
        return None
    text = str(candidate["candidate"])
    parsed = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
    parsed.sdpMid = candidate.get("sdpMid")
    parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
    return parsed
