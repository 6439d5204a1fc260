"""The administrator reads the audit log; nobody else does."""

from __future__ import annotations

from collections.abc import Callable

from server.accounts.service import NewUser, create_user
from server.models import Role
from tests.helpers import PASSWORD, Client

MakeClient = Callable[[], Client]


async def test_admin_reads_audit_log(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    admin = make_client()
    async with admin.services.sessionmaker() as db:
        await create_user(
            db,
            admin.services,
            NewUser(
                email="admin@example.fr",
                password=PASSWORD,
                first_name="Ada",
                last_name="Admin",
                role=Role.ADMIN,
            ),
            actor_id=None,
            ip=None,
        )
        await db.commit()
    admin.user = {"email": "admin@example.fr"}
    await admin.login()
    await doctor.post("/api/invitations", {"first_name": "A", "last_name": "B", "email": "a@b.fr"})
    events = (await admin.get("/api/admin/audit?action=invitation.sent")).body["items"]
    assert [e["actor_id"] for e in events] == [doctor.user["id"]]  # type: ignore[index]
    assert events[0]["resource_type"] == "invitation" and events[0]["ip"] == "127.0.0.1"
    mine = (await admin.get(f"/api/admin/audit?actor_id={patient.user['id']}")).body["items"]  # type: ignore[index]
    assert {e["action"] for e in mine} == {"account.created", "auth.login"}
    bad = await admin.get("/api/admin/audit?limit=0")
    assert bad.status == 422 and bad.body["errors"][0]["field"] == "limit"
    for outsider in (doctor, patient, make_client()):
        assert (await outsider.get("/api/admin/audit")).status in {401, 403}
    reads = (await admin.get("/api/admin/audit?action=audit.read")).body["items"]
    assert len(reads) == 2  # the two successful reads above; the refused one recorded nothing
