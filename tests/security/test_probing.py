"""Which addresses have an account, which invitation links exist: answers that tell an
outsider something are limited per address (sign-up said 409 for a known address, and the
public invitation routes could be probed without limit)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.helpers import PASSWORD, Client

MakeClient = Callable[[], Client]


def signup(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD, "first_name": "A", "last_name": "B"}


async def test_sign_up_answers_a_few_taken_addresses_an_hour(
    make_client: MakeClient, patient: Client
) -> None:
    assert patient.user is not None
    prober = make_client()
    statuses = await asyncio.gather(
        *(prober.post("/api/auth/register", signup(patient.user["email"])) for _ in range(12))
    )
    codes = sorted(r.status for r in statuses)
    assert codes.count(409) == 5 and codes.count(429) == 7, codes
    # From then on the address learns nothing, not even about a free address.
    free = await prober.post("/api/auth/register", signup("free@example.fr"))
    assert free.status == 429 and "Réessayez plus tard" in free.body["detail"]


async def test_sign_ups_with_free_addresses_are_not_counted_as_probes(
    make_client: MakeClient,
) -> None:
    statuses = [
        (await make_client().post("/api/auth/register", signup(f"p{n}@example.fr"))).status
        for n in range(8)
    ]
    assert statuses == [201] * 8


async def test_invitation_links_can_be_probed_a_few_times_an_hour(
    make_client: MakeClient,
) -> None:
    prober = make_client()
    statuses = [
        (await prober.get(f"/api/invitations/token/not-a-real-token-{n}")).status for n in range(25)
    ]
    assert statuses == [404] * 20 + [429] * 5
    accept = await prober.post(
        "/api/invitations/token/another/accept", {"password": PASSWORD, "email": "x@example.fr"}
    )
    assert accept.status == 429
