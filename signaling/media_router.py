"""Where the SFU side of each call runs: on a media node (``teleconsult media``) connected to this
process, or, with none, in this process.

A call goes to one node, chosen when its first participant joins (the node with the fewest
calls), and stays there. The pages notice nothing: their signals for ``"sfu"`` are handed to the
node, and the node's come back to them as ``call:signal`` from ``"sfu"``.

With several app processes sharing Redis, the process through which a call's first participant
joins runs its SFU (itself, or on one of its nodes); the others hand it their pages' signals
(``signaling.sfu_owners``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import socketio

from media.metrics import combine
from media.node import NAMESPACE, verify_token
from media.sfu import SFU_PEER, SfuCalls
from server.events import call_room, peer_room
from signaling.sfu_owners import OwnerGone, RemoteError, SfuOwners

log = logging.getLogger("teleconsult.signaling.media")

NODE_CALL_TIMEOUT = 10


class MediaRouter:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        local: SfuCalls,
        secret_key: Callable[[], str],
        redis_url: str | None = None,
    ) -> None:
        self._sio = sio
        self.local = local
        self._secret_key = secret_key
        # Several processes (Redis): each call's SFU runs in the one that claimed it.
        self._owners = SfuOwners(redis_url, self._here) if redis_url else None
        self.nodes: dict[str, set[str]] = {}  # node sid → its calls
        self._node_of: dict[str, str] = {}  # call id → node sid
        sio.on("connect", self._node_connected, namespace=NAMESPACE)
        sio.on("disconnect", self._node_gone, namespace=NAMESPACE)
        sio.on("media:signal", self._from_node, namespace=NAMESPACE)

    async def _node_connected(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not verify_token(self._secret_key(), token):
            raise socketio.exceptions.ConnectionRefusedError("not a media node of this install")
        self.nodes[sid] = set()
        log.info("media node %s connected", sid)

    async def _node_gone(self, sid: str, *_: Any) -> None:
        """A node's connections went with it: each of its calls starts its SFU side anew (on
        another node, or here), the pages told to join again (``call:sfu-restart``); a page
        that joins again from the same socket stays the same participant."""
        calls = self.nodes.pop(sid, set())
        log.warning("media node %s disconnected; %d calls restart elsewhere", sid, len(calls))
        for call_id in calls:
            self._node_of.pop(call_id, None)
            await self._sio.emit("call:sfu-restart", {"call_id": call_id}, room=call_room(call_id))

    async def _from_node(self, sid: str, data: Any) -> None:
        if not isinstance(data, dict) or sid not in self.nodes:
            return
        call_id, peer_id = data.get("call_id"), data.get("peer_id")
        if self._node_of.get(str(call_id)) != sid or not isinstance(peer_id, str):
            return  # a node speaks only for its own calls
        await self._sio.emit(
            "call:signal",
            {"call_id": call_id, "from": SFU_PEER, **(data.get("payload") or {})},
            room=peer_room(str(call_id), peer_id),
        )

    def _node(self, call_id: str, *, assign: bool = False) -> str | None:
        node = self._node_of.get(call_id)
        if node is None and assign and self.nodes:
            node = min(self.nodes, key=lambda sid: len(self.nodes[sid]))
            self.nodes[node].add(call_id)
            self._node_of[call_id] = node
        return node

    async def _run(
        self, op: str, data: dict[str, Any], *, claim: bool = False, sid: str | None = None
    ) -> Any:
        """Does ``op`` where the call's SFU runs: in this process (itself or its media node), or
        in the process that claimed the call (several processes sharing Redis)."""
        owners = self._owners
        if owners is not None:
            call_id = data["call_id"]
            owner = await owners.owner(call_id, claim=claim)
            if owner is not None and owner != owners.process_id:
                try:
                    return await owners.ask(owner, op, data)
                except OwnerGone:
                    # Its connections went with it: the call's SFU side starts anew here (or
                    # wherever another process already took it), and every page of the call,
                    # whichever process its socket is on, joins again (call:sfu-restart).
                    log.warning("the process running SFU call %s is gone; taking it", call_id)
                    owner = await owners.take_over(call_id, owner)
                    await self._sio.emit(
                        "call:sfu-restart",
                        {"call_id": call_id},
                        room=call_room(call_id),
                        skip_sid=sid,  # the page joining now gets its connection anyway
                    )
                    if not claim:
                        return None  # the page's connection is gone: its rejoin makes a new one
                    if owner != owners.process_id:
                        return await owners.ask(owner, op, data)
            elif owner is None and not claim:
                return None  # nobody runs this call (not joined yet, or long over)
        return await self._here(op, data)

    async def _here(self, op: str, data: dict[str, Any]) -> Any:
        call_id = data["call_id"]
        if op == "join":
            # A call that started here stays here, even if a node connects meanwhile.
            node = None if self.local.room(call_id) else self._node(call_id, assign=True)
            if node is None:
                await self.local.join(call_id, data["peer_id"])
            else:
                await self._sio.emit("media:join", data, to=node, namespace=NAMESPACE)
            return None
        node = self._node(call_id)
        if op == "signal":
            if node is None:
                await self.local.signal(
                    call_id,
                    data["peer_id"],
                    data.get("description"),
                    data.get("candidate"),
                    has_candidate=bool(data.get("has_candidate")),
                )
            else:
                await self._sio.emit("media:signal", data, to=node, namespace=NAMESPACE)
            return None
        if op == "leave":
            if node is None:
                return await self.local.leave(call_id, data["peer_id"])
            return await self._ask(node, "media:leave", data)
        if op == "stats":
            if node is None:
                room = self.local.room(call_id)
                return await room.stats() if room else []
            return await self._ask(node, "media:stats", data)
        raise ValueError(f"unknown SFU operation {op!r}")

    async def join(self, call_id: str, peer_id: str, sid: str | None = None) -> None:
        """``sid``: the joining page's socket."""
        await self._run("join", {"call_id": call_id, "peer_id": peer_id}, claim=True, sid=sid)

    async def signal(
        self,
        call_id: str,
        peer_id: str,
        description: dict[str, Any] | None,
        candidate: dict[str, Any] | None,
        *,
        has_candidate: bool,
    ) -> None:
        data = {
            "call_id": call_id,
            "peer_id": peer_id,
            "description": description,
            "candidate": candidate,
            "has_candidate": has_candidate,
        }
        await self._run("signal", data)

    async def leave(self, call_id: str, peer_id: str) -> list[dict[str, Any]]:
        """The participant's SFU side closes; returns what was forwarded of them."""
        return await self._figures("leave", {"call_id": call_id, "peer_id": peer_id})

    async def stats(self, call_id: str) -> list[dict[str, Any]]:
        return await self._figures("stats", {"call_id": call_id})

    async def _figures(self, op: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            answer = await self._run(op, data)
        except (TimeoutError, RemoteError, aioredis.RedisError) as exc:
            log.warning("SFU %s of call %s failed: %r", op, data["call_id"], exc)
            return []
        return list(answer) if isinstance(answer, list) else []

    async def metrics(self) -> dict[str, Any]:
        """Totals and current flows over every SFU call: this process's and its nodes'."""
        readings = [await self.local.reading()]
        for node in list(self.nodes):
            answer = await self._call(node, "media:metrics", {})
            if isinstance(answer, dict):
                readings.append(answer)
        return {**combine(readings), "nodes": len(self.nodes)}

    async def _ask(self, node: str, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        answer = await self._call(node, event, data)
        return list(answer) if isinstance(answer, list) else []

    async def _call(self, node: str, event: str, data: dict[str, Any]) -> Any:
        try:
            return await self._sio.call(
                event, data, to=node, namespace=NAMESPACE, timeout=NODE_CALL_TIMEOUT
            )
        except (TimeoutError, socketio.exceptions.SocketIOError) as exc:
            log.warning("media node %s did not answer %s: %r", node, event, exc)
            return None

    async def close(self) -> None:
        await self.local.close()
        if self._owners is not None:
            await self._owners.close()
