"""Anyone could sign up as a doctor with any Luhn-valid RPPS and send invitation emails from the
platform. A professional who signs up alone now waits for the install's administrator; the
administrator can also deactivate an account, which ends its sessions and sockets at once."""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import PASSWORD, Client, connect, make_admin, valid_rpps
from tests.signaling.sockets import Tab

MakeClient = Callable[[], Client]


async def admin_of(make_client: MakeClient) -> Client:
    return await make_admin(make_client())


async def test_a_self_registered_doctor_waits_for_the_admin(
    make_client: MakeClient, patient: Client
) -> None:
    impostor = make_client()
    body = await impostor.register(
        approve=False,
        email="dr.house@example.fr",
        first_name="Gregory",
        last_name="House",
        role="doctor",
        rpps=valid_rpps(77),
    )
    assert body["pending_approval"] is True
    assert (await impostor.get("/api/me")).body["pending_approval"] is True
    invite = await impostor.post(
        "/api/invitations", {"first_name": "A", "last_name": "B", "email": "victim@example.fr"}
    )
    assert invite.status == 403 and "attend la validation" in invite.body["detail"]
    assert (await patient.get("/api/practitioners?q=house")).body["items"] == []
    asked = await patient.post("/api/contact-requests", {"practitioner_id": body["id"]})
    assert asked.status == 404

    admin = await admin_of(make_client)
    # Only the administrator approves.
    assert (await patient.post(f"/api/admin/users/{body['id']}/approve")).status == 403
    assert (await impostor.post(f"/api/admin/users/{body['id']}/approve")).status == 403
    pending = (await admin.get("/api/admin/users?status=pending")).body["items"]
    assert [u["id"] for u in pending] == [body["id"]]
    approved = await admin.post(f"/api/admin/users/{body['id']}/approve")
    assert approved.status == 200 and approved.body["pending_approval"] is False
    assert (await admin.post(f"/api/admin/users/{body['id']}/approve")).status == 409
    assert (await admin.get("/api/admin/users?status=pending")).body["items"] == []
    invite = await impostor.post(
        "/api/invitations", {"first_name": "A", "last_name": "B", "email": "p@example.fr"}
    )
    assert invite.status == 201
    found = (await patient.get("/api/practitioners?q=house")).body["items"]
    assert [p["id"] for p in found] == [body["id"]]


async def test_a_deactivated_account_loses_its_sessions_and_sockets_at_once(
    make_client: MakeClient, doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    admin = await admin_of(make_client)
    tab = Tab(patient)
    try:
        await tab.connect()
        assert (await tab.subscribe(cid))["ok"]
        assert patient.user is not None
        done = await admin.post(f"/api/admin/users/{patient.user['id']}/deactivate")
        assert done.status == 200 and done.body["active"] is False
        await tab.wait_closed()
        assert tab.events["session:ended"][0]["detail"] == (
            "Votre compte a été désactivé par l'administrateur de la plateforme."
        )
    finally:
        await tab.close()
    assert (await patient.get("/api/me")).status == 401
    relogin = await patient.post(
        "/api/auth/login", {"email": patient.user["email"], "password": PASSWORD}
    )
    assert relogin.status == 401
    inactive = (await admin.get("/api/admin/users?status=inactive")).body["items"]
    assert [u["id"] for u in inactive] == [patient.user["id"]]
