"""``GET /metrics``: the SFU's figures for the operators' monitoring, in Prometheus' text format.

Off unless ``TC_METRICS_TOKEN`` is set, and then only for a scraper that presents it as a bearer
token: the endpoint names no call and no person, but how many consultations run at a given hour
is still the clinic's business, and a reverse proxy would make every request look local.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from media.metrics import COUNTERS, GAUGES
from server.calls.keys import SFU_CALLS
from server.errors import NotAuthenticated, NotFound
from server.http.keys import services_of
from server.http.problems import problem_response

routes = web.RouteTableDef()

PREFIX = "teleconsult_sfu_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HELP = {
    "frames_received": "Encoded frames received from publishers.",
    "bytes_received": "Bytes of encoded media received from publishers.",
    "packets_received": "RTP packets received from publishers.",
    "packets_lost": "RTP packets from publishers lost on the way to the SFU.",
    "keyframe_requests": "Keyframe requests (PLI) sent to publishers.",
    "frames_forwarded": "Encoded frames forwarded to subscribers.",
    "bytes_forwarded": "Bytes of encoded media forwarded to subscribers.",
    "packets_forwarded": "RTP packets sent to subscribers.",
    "frames_dropped": "Frames skipped for a subscriber that could not keep up.",
    "tracks": "Published tracks being forwarded.",
    "subscriptions": "Forwarded streams (a track to one subscriber).",
    "bitrate_in_kbps": "Received bitrate over the last seconds, in kbit/s.",
    "bitrate_out_kbps": "Forwarded bitrate over the last seconds, in kbit/s.",
}


def _family(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> list[str]:
    lines = [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]
    lines += [f"{PREFIX}{name}{labels} {value}" for labels, value in samples]
    return lines


def render(reading: dict[str, Any]) -> str:
    """The exposition format (version 0.0.4): one family per figure, labelled by media kind."""
    lines = _family(
        "nodes", "gauge", "Media nodes connected to this app.", [("", reading["nodes"])]
    )
    lines += _family("calls", "gauge", "SFU calls in progress.", [("", reading["calls"])])
    lines += _family(
        "participants",
        "gauge",
        "Participants connected to the SFU.",
        [("", reading["participants"])],
    )
    kinds = sorted(reading["kinds"].items())
    for key in COUNTERS + GAUGES:
        counter = key in COUNTERS
        samples = [(f'{{kind="{kind}"}}', figures[key]) for kind, figures in kinds]
        lines += _family(
            f"{key}_total" if counter else key,
            "counter" if counter else "gauge",
            HELP[key],
            samples,
        )
    return "\n".join(lines) + "\n"


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    token = services_of(request).settings.metrics_token
    if token is None:
        raise NotFound("Les métriques sont désactivées (TC_METRICS_TOKEN n'est pas défini).")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        error = NotAuthenticated("Jeton de métriques absent ou invalide (Authorization: Bearer …).")
        return problem_response(
            error.status,
            error.title,
            error.detail,
            type_slug=error.type_slug,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    reading = await request.app[SFU_CALLS].metrics()
    return web.Response(
        body=render(reading).encode(),
        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"},
    )
