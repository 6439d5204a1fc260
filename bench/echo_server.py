"""Baseline for bench_messaging: a bare python-socketio server of the same shape as ours (rooms
per conversation, an HTTP POST that emits to the room), with no database, no auth, no checks."""

from __future__ import annotations

import sys

import socketio
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
app = web.Application()
sio.attach(app)
seqs: dict[str, int] = {}


async def subscribe(sid: str, data: dict[str, str]) -> dict[str, object]:
    await sio.enter_room(sid, f"conv:{data['conversation_id']}")
    return {"ok": True, "items": []}


async def post(request: web.Request) -> web.Response:
    conversation_id = request.match_info["id"]
    body = await request.json()
    seqs[conversation_id] = seqs.get(conversation_id, 0) + 1
    message = {"conversation_id": conversation_id, "seq": seqs[conversation_id], **body}
    await sio.emit("message:new", message, room=f"conv:{conversation_id}")
    return web.json_response(message, status=201)


sio.on("conversation:subscribe", subscribe)
app.router.add_post("/api/conversations/{id}/messages", post)

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
