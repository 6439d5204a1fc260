"""The administrator reads the audit log; nobody else does."""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import Client, make_admin

MakeClient = Callable[[], Client]


async def test_admin_reads_audit_log(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    admin = await make_admin(make_client())
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
