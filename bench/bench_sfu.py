"""SFU forwarding cost: one publisher at 720p/30 fps forwarded to N subscribers.

    .venv/bin/python bench/bench_sfu.py [--subscribers 1 5 10 20] [--seconds 10]

Three kinds of process, all aiortc, talking over loopback:
- the media node under test, with one server-side peer connection per participant;
- the publisher: a synthetic 1280×720 picture that moves, encoded VP8 at 30 fps;
- the subscribers, N peer connections in one process; they count what arrives without decoding
  it (their own receivers are tapped too), so their cost does not weigh on the node's core.

For each N the node runs twice: forwarding encoded frames (media/forwarding.py), and, as the
baseline, aiortc's ``MediaRelay``, which decodes the publisher's video once and encodes it again
for each subscriber. Printed: the node's CPU per forwarded stream (% of one core, from
/proc/<pid>/stat), frames delivered per subscriber per second, loss, and the time a frame waits
in the node (from its last packet arriving to its first packet leaving).

The node also runs with the publisher alone (N=0): what receiving one stream costs (ICE, SRTP,
RTP parsing, the receiver's statistics and bandwidth estimate, assembling frames). Every way of
forwarding pays it once per publisher, the baseline too; with one subscriber it is most of the
node's cost, so it bounds the ratio at N=1. What each subscriber adds beyond it is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT, FPS = 1280, 720, 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vp8_only(pc: Any) -> None:
    from aiortc import RTCRtpSender

    caps = RTCRtpSender.getCapabilities("video")
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == "video/VP8"])


async def post_sdp(url: str, sdp: dict[str, str]) -> dict[str, str]:
    async with aiohttp.ClientSession() as http, http.post(url, json=sdp) as reply:
        reply.raise_for_status()
        return dict(await reply.json())


# --- the media node -------------------------------------------------------------------------


async def node(port: int, mode: str) -> None:
    """Answers a publisher's offer and subscribers' offers; forwards or relays."""
    from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    from media.room import Room

    room = Room("bench")
    room.join("publisher")
    relay = MediaRelay()
    published: dict[str, Any] = {}
    connections: list[Any] = []

    async def publish(request: web.Request) -> web.Response:
        offer = await request.json()
        pc = RTCPeerConnection()
        connections.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if mode == "forward":
                receiver = next(r for r in pc.getReceivers() if r.track is track)
                published["publication"], _ = room.publish("publisher", receiver)
            else:
                published["track"] = track

        await pc.setRemoteDescription(RTCSessionDescription(**offer))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp, "type": "answer"})

    async def subscribe(request: web.Request) -> web.Response:
        offer = await request.json()
        pc = RTCPeerConnection()
        connections.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(**offer))
        who = f"s{len(connections)}"
        if mode == "forward":
            publication = published["publication"]
            room.participants.add(who)
            track = room.subscribe(publication, who)
            track.attach(pc.addTrack(track))
        else:
            pc.addTrack(relay.subscribe(published["track"]))
        vp8_only(pc)
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp, "type": "answer"})

    async def stats(_: web.Request) -> web.Response:
        publication = published.get("publication")
        body: dict[str, Any] = {}
        if publication is not None:
            body["publication"] = await publication.stats()
            track = publication.subscribers
            body["waits_ms"] = sorted(w * 1000 for t in track.values() for w in t.waits)
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/publish", publish)
    app.router.add_post("/subscribe", subscribe)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# --- the publisher --------------------------------------------------------------------------


async def publisher(node_url: str) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
    from av import VideoFrame

    row = bytes((x * 255 // WIDTH) for x in range(WIDTH))
    luma = row * HEIGHT

    class MovingPicture(VideoStreamTrack):
        """A gradient that slides a few pixels a frame: the encoder has real work, and the
        bitrate is that of a picture with motion (about 1–2 Mb/s)."""

        frame_index = 0

        async def recv(self) -> VideoFrame:
            pts, time_base = await self.next_timestamp()
            shift = (self.frame_index * 8) % WIDTH
            self.frame_index += 1
            frame = VideoFrame(WIDTH, HEIGHT, "yuv420p")
            frame.planes[0].update(luma[shift:] + luma[:shift])
            frame.planes[1].update(bytes([128]) * frame.planes[1].buffer_size)
            frame.planes[2].update(bytes([128]) * frame.planes[2].buffer_size)
            frame.pts, frame.time_base = pts, time_base
            return frame

    pc = RTCPeerConnection()
    pc.addTrack(MovingPicture())
    vp8_only(pc)
    await pc.setLocalDescription(await pc.createOffer())
    answer = await post_sdp(
        f"{node_url}/publish", {"sdp": pc.localDescription.sdp, "type": "offer"}
    )
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    await asyncio.Event().wait()


# --- the subscribers ------------------------------------------------------------------------


async def subscribers(node_url: str, count: int, report: Path) -> None:
    from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

    from media.forwarding import EncodedFrame, tap_receiver

    received = [0] * count
    pcs = []
    for index in range(count):
        pc = RTCPeerConnection()
        pcs.append(pc)
        pc.addTransceiver("video", direction="recvonly")
        vp8_only(pc)

        def count_frame(frame: EncodedFrame, index: int = index) -> None:
            received[index] += 1

        @pc.on("track")
        def on_track(track: MediaStreamTrack, pc: Any = pc, sink: Any = count_frame) -> None:
            receiver = next(r for r in pc.getReceivers() if r.track is track)
            tap_receiver(receiver, sink)

        await pc.setLocalDescription(await pc.createOffer())
        answer = await post_sdp(
            f"{node_url}/subscribe", {"sdp": pc.localDescription.sdp, "type": "offer"}
        )
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
    while True:
        text = json.dumps({"received": received, "at": time.monotonic()})
        await asyncio.to_thread(_write_whole, report, text)
        await asyncio.sleep(0.5)


def _write_whole(path: Path, text: str) -> None:
    """Written beside, then renamed: the reader never sees half a file (a run crashed on a
    JSONDecodeError reading the report while it was being written)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def read_report(path: Path, within: float = 20.0) -> list[int]:
    """The subscribers' counts; waits for their first report."""
    deadline = time.monotonic() + within
    while True:
        try:
            return list(json.loads(await asyncio.to_thread(path.read_text))["received"])
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


# --- the orchestra --------------------------------------------------------------------------


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


async def wait_for(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(url):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


async def measure(mode: str, count: int, seconds: float, tmp: Path) -> dict[str, float]:
    """The node's CPU with ``count`` subscribers; with none, what receiving the publisher costs
    alone (the part of the cost that no way of forwarding can remove)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    report = tmp / f"received-{mode}-{count}.json"
    procs = [spawn("--role", "node", "--port", str(port), "--mode", mode)]
    try:
        await wait_for(f"{url}/stats")
        procs.append(spawn("--role", "publisher", "--node", url))
        await asyncio.sleep(2)
        if count:
            procs.append(
                spawn(
                    "--role",
                    "subscribers",
                    "--node",
                    url,
                    "--count",
                    str(count),
                    "--report",
                    str(report),
                )
            )
        await asyncio.sleep(4)  # connections up, first keyframe through
        node_pid = procs[0].pid
        start_received = await read_report(report) if count else []
        cpu_before, started = cpu_seconds(node_pid), time.monotonic()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/stats") as r:
                before = await r.json()
            await asyncio.sleep(seconds)
            async with http.get(f"{url}/stats") as r:
                after = await r.json()
        cpu = cpu_seconds(node_pid) - cpu_before
        elapsed = time.monotonic() - started
        end_received = await read_report(report) if count else []
    finally:
        for proc in reversed(procs):
            stop(proc)
    result = {"node_cpu_pct": cpu / elapsed * 100}
    if "publication" in after:
        published = after["publication"]["frames"] - before["publication"]["frames"]
        result["published_fps"] = published / elapsed
    if not count:
        return result
    delivered = [e - s for s, e in zip(start_received, end_received, strict=True)]
    result |= {
        "cpu_per_stream_pct": cpu / elapsed / count * 100,
        "fps_per_subscriber": sum(delivered) / count / elapsed,
        "min_fps": min(delivered) / elapsed,
    }
    if "publication" in after:
        result["loss_pct"] = max(
            0.0, 100 * (1 - sum(delivered) / max(1, result["published_fps"] * elapsed * count))
        )
        result["keyframe_requests"] = after["publication"]["keyframe_requests"]
        waits = after.get("waits_ms", [])
        if waits:
            result["wait_p50_ms"] = waits[len(waits) // 2]
            result["wait_p99_ms"] = waits[int(len(waits) * 0.99) - 1]
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--role", choices=["bench", "node", "publisher", "subscribers"], default="bench"
    )
    parser.add_argument("--port", type=int)
    parser.add_argument("--mode", choices=["forward", "relay"], default="forward")
    parser.add_argument("--node")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--report")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--relay-subscribers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    if args.role == "node":
        return await node(args.port, args.mode)
    if args.role == "publisher":
        return await publisher(args.node)
    if args.role == "subscribers":
        return await subscribers(args.node, args.count, Path(args.report))

    import tempfile

    print(f"one publisher, {WIDTH}x{HEIGHT} VP8 at {FPS} fps; machine: {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        baseline = {}
        for n in args.relay_subscribers:
            r = await measure("relay", n, args.seconds, Path(tmp))
            baseline[n] = r
            print(
                f"MediaRelay (baseline)  N={n:<3} node CPU {r['node_cpu_pct']:5.1f}% = "
                f"{r['cpu_per_stream_pct']:5.1f}% per stream; {r['fps_per_subscriber']:4.1f} fps "
                f"per subscriber (slowest {r['min_fps']:4.1f})",
                flush=True,
            )
        per_stream_baseline = min(r["cpu_per_stream_pct"] for r in baseline.values())
        receiving = (await measure("forward", 0, args.seconds, Path(tmp)))["node_cpu_pct"]
        print(
            f"receiving only (ours)  N=0   node CPU {receiving:5.1f}%: the publisher's stream "
            f"received and assembled, forwarded to nobody. Every N pays it once; at N=1 the "
            f"ratio per stream cannot exceed ×{per_stream_baseline / max(0.01, receiving):.0f}",
            flush=True,
        )
        for n in args.subscribers:
            r = await measure("forward", n, args.seconds, Path(tmp))
            # What each subscriber adds, the publisher's stream being received anyway.
            added = max(0.01, (r["node_cpu_pct"] - receiving) / n)
            print(
                f"forwarding (ours)      N={n:<3} node CPU {r['node_cpu_pct']:5.1f}% = "
                f"{r['cpu_per_stream_pct']:5.2f}% per stream; {r['fps_per_subscriber']:4.1f} fps "
                f"per subscriber (slowest {r['min_fps']:4.1f}, published "
                f"{r.get('published_fps', 0):4.1f}); loss {r.get('loss_pct', 0):4.1f}%; "
                f"wait in node p50 {r.get('wait_p50_ms', 0):.2f} ms p99 "
                f"{r.get('wait_p99_ms', 0):.2f} ms\n"
                f"{'':23}ratio baseline/ours per stream "
                f"×{per_stream_baseline / max(0.01, r['cpu_per_stream_pct']):.0f}; "
                f"each subscriber adds {added:.2f}% (×{per_stream_baseline / added:.0f})",
                flush=True,
            )
    print(
        "goal: at least 20x less CPU per forwarded stream than the baseline, and 20 subscribers "
        "of one 720p publisher within one core"
    )


if __name__ == "__main__":
    asyncio.run(main())
