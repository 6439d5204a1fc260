"""Idempotency-Key on creating requests: a double click or a retry creates one thing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.helpers import PASSWORD, Client, outbox_links, valid_rpps

INVITE = {"first_name": "Jean", "last_name": "Dupont", "email": "jean@example.fr"}


async def invite(doctor: Client, key: str, **changes: Any) -> Any:
    return await doctor.post(
        "/api/invitations", {**INVITE, **changes}, headers={"Idempotency-Key": key}
    )


async def invitations(doctor: Client) -> list[dict[str, Any]]:
    return list((await doctor.get("/api/invitations")).body["items"])


async def test_the_same_key_gives_the_first_answer_and_creates_nothing_more(
    doctor: Client, outbox: Path
) -> None:
    first = await invite(doctor, "k-1")
    again = await invite(doctor, "k-1")
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(await invitations(doctor)) == 1
    assert len(outbox_links(outbox)) == 1  # one email, not two
    # Another body under the same key is another action: refused, in words.
    other = await invite(doctor, "k-1", first_name="Paul")
    assert other.status == 422 and "autre requête" in other.body["detail"]
    # A new key is a new action.
    assert (await invite(doctor, "k-2", email="paul@example.fr")).status == 201
    assert len(await invitations(doctor)) == 2


async def test_a_double_click_creates_one(doctor: Client) -> None:
    replies = await asyncio.gather(*(invite(doctor, "click") for _ in range(4)))
    assert {r.status for r in replies} <= {201, 409}, replies
    assert any(r.status == 201 for r in replies)
    assert len(await invitations(doctor)) == 1


async def test_a_refused_request_may_be_corrected_under_its_key(doctor: Client) -> None:
    refused = await invite(doctor, "k-fix", email="not-an-address")
    assert refused.status == 422
    fixed = await invite(doctor, "k-fix")
    assert fixed.status == 201 and len(await invitations(doctor)) == 1


async def test_keys_are_per_user_and_last_a_day(doctor: Client, make_client: Any) -> None:
    other = make_client()
    await other.register(
        email="o@example.fr", first_name="Paul", last_name="Roux", role="doctor",
        rpps=valid_rpps(44),
    )  # fmt: skip
    assert (await invite(doctor, "shared")).status == 201
    assert (await invite(other, "shared", email="x@example.fr")).status == 201
    doctor.services.clock.advance(timedelta(hours=25))  # type: ignore[attr-defined]
    assert doctor.user is not None
    signed_in = {"email": doctor.user["email"], "password": PASSWORD}
    assert (await doctor.post("/api/auth/login", signed_in)).status == 200
    later = await invite(doctor, "shared", email="y@example.fr")
    assert later.status == 201 and later.headers.get("Idempotent-Replayed") is None
    assert len(await invitations(doctor)) == 2


async def test_a_bad_key_is_refused(doctor: Client) -> None:
    refused = await invite(doctor, "x" * 256)
    assert refused.status == 422 and "Idempotency-Key" in refused.body["detail"]
    assert await invitations(doctor) == []
