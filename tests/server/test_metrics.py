"""``GET /metrics``: off without ``TC_METRICS_TOKEN``, then only for that bearer token, in
Prometheus' text format. The figures of a live SFU call are checked in
tests/browser/test_sfu_call.py, with the SFU in the app and on a media node."""

from __future__ import annotations

from typing import Any

import pytest

from server.settings import Settings, SettingsError
from tests.helpers import Client

TOKEN = "scrape-me-please-0123456789"


async def test_metrics_are_off_unless_a_token_is_set(start_server: Any) -> None:
    client = Client(await start_server())
    try:
        reply = await client.get("/metrics")
        assert reply.status == 404
        assert "TC_METRICS_TOKEN" in reply.body["detail"]
    finally:
        await client.close()


async def test_metrics_need_the_bearer_token(start_server: Any) -> None:
    client = Client(await start_server(metrics_token=TOKEN))
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            reply = await client.get("/metrics", headers=headers)
            assert reply.status == 401, headers
            assert reply.headers["Content-Type"].startswith("application/problem+json")
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
            assert "Bearer" in reply.body["detail"]

        reply = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        lines = reply.body.splitlines()
        # No call yet: the gauges read zero, and every family is declared with its type.
        assert "teleconsult_sfu_calls 0" in lines and "teleconsult_sfu_nodes 0" in lines
        assert "# TYPE teleconsult_sfu_frames_forwarded_total counter" in lines
        assert "# TYPE teleconsult_sfu_bitrate_in_kbps gauge" in lines
        # Every series exists from the start, at zero, for both kinds of media.
        for kind in ("audio", "video"):
            assert f'teleconsult_sfu_frames_forwarded_total{{kind="{kind}"}} 0' in lines
            assert f'teleconsult_sfu_tracks{{kind="{kind}"}} 0' in lines
        samples = [line for line in lines if line and not line.startswith("#")]
        assert all(len(line.split(" ")) == 2 for line in samples), samples
    finally:
        await client.close()


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(SettingsError, match="TC_METRICS_TOKEN must be at least 16"):
        Settings.from_env({"TC_METRICS_TOKEN": "short"})
    assert Settings.from_env({"TC_METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
