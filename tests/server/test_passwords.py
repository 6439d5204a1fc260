"""The real argon2id parameters (the rest of the suite uses cheap ones for speed)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from server.models import User
from server.passwords import Passwords
from server.settings import PasswordHashing, Settings
from tests.helpers import PASSWORD, Client


async def test_default_parameters_are_rfc9106_second_recommendation() -> None:
    params = Settings().password_hashing
    assert (params.time_cost, params.memory_cost_kib, params.parallelism) == (3, 65536, 4)
    stored = await Passwords(params).hash("un mot de passe solide")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert await Passwords(params).verify(stored, "un mot de passe solide")
    assert not await Passwords(params).verify(stored, "un autre mot de passe")


async def test_login_rehashes_when_parameters_were_raised(
    start_server: Callable[..., object],
) -> None:
    weak = PasswordHashing(time_cost=1, memory_cost_kib=1024, parallelism=1)
    stronger = PasswordHashing(time_cost=2, memory_cost_kib=2048, parallelism=1)
    first = await start_server(password_hashing=weak)  # type: ignore[operator]
    client = Client(first)
    await client.register(email="a@example.fr", first_name="A", last_name="B")
    await client.close()
    await first.close()

    second = await start_server(password_hashing=stronger)  # type: ignore[operator]
    client = Client(second)
    reply = await client.post("/api/auth/login", {"email": "a@example.fr", "password": PASSWORD})
    await client.close()
    assert reply.status == 200
    async with client.services.sessionmaker() as db:
        user = await db.scalar(select(User))
    assert user is not None and "m=2048,t=2,p=1" in user.password_hash
