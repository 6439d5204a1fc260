from tests.helpers import Client


async def test_healthz(make_client) -> None:  # type: ignore[no-untyped-def]
    client: Client = make_client()
    reply = await client.get("/healthz")
    assert reply.status == 200
    assert reply.body == {"status": "ok"}


async def test_doctor_invites(doctor: Client) -> None:
    reply = await doctor.post(
        "/api/invitations", {"first_name": "A", "last_name": "B", "email": "a@b.fr"}
    )
    assert reply.status == 201, reply
    assert reply.body["delivery_status"] == "sent"
