"""Schemathesis over every operation of the OpenAPI the server publishes, as each role and
anonymously: no input, however malformed, gets a 5xx. Bounded in time (``FUZZ_SECONDS`` per
role); the description is generated from the routes, so a new route is fuzzed the day it is
added."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.helpers import Client, connect, make_secretary, valid_rpps
from tests.mail import free_port
from tests.security.test_professional_approval import admin_of

FUZZ_SECONDS = int(os.environ.get("TC_FUZZ_SECONDS", "10"))
ST = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"


@pytest.fixture
def database(tmp_path: Path) -> tuple[str, None]:
    """The fuzzer tests the HTTP layer; SQLite is enough (the API tests run on both)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}", None


async def fuzz(base: str, cookie: str | None, workdir: Path) -> tuple[int, str]:
    headers = ["-H", f"Origin: {base}"]
    if cookie:
        headers += ["-H", f"Cookie: tc_session={cookie}"]
    proc = await asyncio.create_subprocess_exec(
        ST,
        "run",
        f"{base}/api/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-time",
        str(FUZZ_SECONDS),
        "--workers",
        "2",
        # The coverage phase trips a CPython 3.11 bug in ast.parse inside schemathesis
        # ("AST constructor recursion depth mismatch"); examples and fuzzing reach every
        # operation.
        "--phases",
        "examples,fuzzing",
        # Signing out would end the session the rest of the run uses.
        "--exclude-path-regex",
        "/api/auth/logout",
        "--request-timeout",
        "10",
        *headers,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=workdir,  # its cache (.schemathesis/) stays out of the checkout
    )
    out, _ = await proc.communicate()
    return await proc.wait(), out.decode(errors="replace")


def token(client: Client) -> str:
    return next(c.value for c in client.session.cookie_jar if c.key == "tc_session")


@pytest.mark.timeout(300)
async def test_no_operation_answers_5xx_to_any_role(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client], tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await start_server(port=port, public_url=base)
    doctor, patient, secretary = client_of(server), client_of(server), client_of(server)
    await doctor.register(
        email="dr@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(5),
    )
    await patient.register(email="p@example.fr", first_name="Jean", last_name="Dupont")
    await connect(doctor, patient)
    assert doctor.user is not None
    await make_secretary(secretary, doctor.user["id"])
    admin = await admin_of(lambda: client_of(server))
    failures = []
    for role, cookie in (
        ("anonymous", None),
        ("patient", token(patient)),
        ("doctor", token(doctor)),
        ("secretary", token(secretary)),
        ("admin", token(admin)),
    ):
        status, output = await fuzz(base, cookie, tmp_path)
        if status != 0:
            failures.append(f"--- as {role} (exit {status}):\n{output[-4000:]}")
    assert not failures, "\n".join(failures)
