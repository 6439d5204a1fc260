"""Payment requests: statuses, who may ask and see, reminders and expiry, and Stripe Checkout
against a local stand-in of Stripe's API, with signed webhooks applied once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from server.clock import FakeClock
from server.payments import reminders as payments
from tests.helpers import Client, connect, make_secretary, valid_rpps

MakeClient = Callable[[], Client]
WEBHOOK_SECRET = "whsec_test_secret"


async def _ask(doctor: Client, cid: str, **fields: Any) -> Any:
    body = {"amount_cents": 2500, "currency": "EUR", "label": "Téléconsultation du 23/11"}
    reply = await doctor.post(f"/api/conversations/{cid}/payment-requests", {**body, **fields})
    assert reply.status == 201, reply
    return reply.body


async def test_request_paid_at_the_practice(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    asked = await _ask(doctor, cid)
    assert asked["status"] == "requested" and asked["amount_cents"] == 2500
    assert asked["pay_url"] == f"http://teleconsult.test/p/{asked['id']}"
    assert asked["payee"]["last_name"] == "Martin" and not asked["online_payment"]
    [message] = (await patient.get(f"/api/conversations/{cid}/messages")).body["items"]
    assert asked["pay_url"] in message["body"] and "25,00 €" in message["body"]
    seen = await patient.get(f"/api/payment-requests/{asked['id']}")
    assert seen.status == 200 and seen.body["label"] == "Téléconsultation du 23/11"
    # No online provider here: the page offers the practice's own ways.
    online = await patient.post(f"/api/payment-requests/{asked['id']}/checkout")
    assert online.status == 409 and "au cabinet" in online.body["detail"]
    owed = await doctor.get("/api/payment-requests?status=requested")
    assert owed.body["owed_cents"] == 2500 and [r["id"] for r in owed.body["items"]] == [
        asked["id"]
    ]
    assert (
        await patient.post(f"/api/payment-requests/{asked['id']}/mark-paid", {"method": "cash"})
    ).status == 403
    paid = await doctor.post(
        f"/api/payment-requests/{asked['id']}/mark-paid", {"method": "card_terminal"}
    )
    assert paid.status == 200 and paid.body["status"] == "paid"
    assert paid.body["paid_method"] == "card_terminal" and paid.body["paid_at"]
    twice = await doctor.post(f"/api/payment-requests/{asked['id']}/mark-paid", {"method": "cash"})
    assert twice.status == 409 and "payée" in twice.body["detail"]
    late_cancel = await doctor.post(f"/api/payment-requests/{asked['id']}/cancel")
    assert late_cancel.status == 409
    assert (await doctor.get("/api/payment-requests?status=requested")).body["owed_cents"] == 0
    mine = await patient.get("/api/payment-requests")
    assert [r["status"] for r in mine.body["items"]] == ["paid"]
    stranger = make_client()
    await stranger.register(email="x@example.fr", first_name="X", last_name="Y")
    assert (await stranger.get(f"/api/payment-requests/{asked['id']}")).status == 404
    assert (await stranger.get("/api/payment-requests")).body["items"] == []


async def test_cancel_and_listing_by_conversation(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    asked = await _ask(doctor, cid, amount_cents=1500, label="Certificat")
    cancelled = await doctor.post(f"/api/payment-requests/{asked['id']}/cancel")
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    listed = await patient.get(f"/api/conversations/{cid}/payment-requests")
    assert [(r["label"], r["status"]) for r in listed.body["items"]] == [
        ("Certificat", "cancelled")
    ]
    paid_after = await doctor.post(
        f"/api/payment-requests/{asked['id']}/mark-paid", {"method": "transfer"}
    )
    assert paid_after.status == 409


async def test_who_may_ask_and_bad_amounts(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    path = f"/api/conversations/{cid}/payment-requests"
    for body, fragment in [
        ({"amount_cents": 0, "label": "x"}, "amount_cents"),
        ({"amount_cents": 100_001, "label": "x"}, "amount_cents"),
        ({"amount_cents": 2500, "currency": "USD", "label": "x"}, "euro"),
        ({"amount_cents": 2500, "label": "   "}, "label"),
        ({"amount_cents": "25,00", "label": "x"}, "amount_cents"),
    ]:
        reply = await doctor.post(path, body)
        assert reply.status == 422 and fragment in reply.body["detail"], (body, reply)
    assert (await patient.post(path, {"amount_cents": 2500, "label": "x"})).status == 403
    assert doctor.user
    secretary = make_client()
    await make_secretary(secretary, doctor.user["id"])
    by_secretary = await secretary.post(path, {"amount_cents": 2500, "label": "Consultation"})
    assert by_secretary.status == 201 and by_secretary.body["payee_id"] == doctor.user["id"]
    assert (await secretary.get("/api/payment-requests")).body["owed_cents"] == 2500
    nurse = make_client()
    await nurse.register(
        email="n@example.fr", first_name="N", last_name="I", role="nurse", rpps=valid_rpps(71)
    )
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    await doctor.post(f"/api/calls/{call['id']}/invite-nurse", {"nurse_id": nurse.user["id"]})  # type: ignore[index]
    by_nurse = await nurse.post(path, {"amount_cents": 1500, "label": "TLD"})
    assert by_nurse.status == 403 and "tiers payant" in by_nurse.body["detail"]
    retry = {"amount_cents": 2500, "label": "Consultation", "client_id": "pay-1"}
    first = await doctor.post(path, retry)
    again = await doctor.post(path, retry)
    assert first.status == 201 and again.status == 200 and again.body["id"] == first.body["id"]


async def test_reminders_then_expiry(
    doctor: Client, patient: Client, clock: FakeClock, outbox: Path
) -> None:
    cid = await connect(doctor, patient)
    asked = await _ask(doctor, cid)
    services = doctor.services

    async def sweep() -> tuple[int, int]:
        async with services.sessionmaker() as db:
            done = await payments.sweep(db, services)
        # Days pass: idle sessions expire, so both sign in again to look.
        await doctor.login()
        await patient.login()
        return done

    assert await sweep() == (0, 0)
    clock.advance(timedelta(days=3))
    assert await sweep() == (1, 0)
    assert await sweep() == (0, 0)  # once per step
    messages = (await patient.get(f"/api/conversations/{cid}/messages")).body["items"]
    assert messages[-1]["body"].startswith("Rappel : la demande de paiement de 25,00 €")
    reminders = [p for p in outbox.glob("*.eml") if "Rappel de paiement" in p.read_text()]
    assert len(reminders) == 1
    clock.advance(timedelta(days=7))
    assert await sweep() == (1, 0)
    clock.advance(timedelta(days=30))
    assert await sweep() == (0, 1)
    shown = await patient.get(f"/api/payment-requests/{asked['id']}")
    assert shown.body["status"] == "expired" and shown.body["reminders_sent"] == 2
    # Money that arrives late is still recorded.
    late = await doctor.post(
        f"/api/payment-requests/{asked['id']}/mark-paid", {"method": "transfer"}
    )
    assert late.status == 200 and late.body["status"] == "paid"
    # A paid request gets no reminder.
    other = await _ask(doctor, cid, label="Autre")
    await doctor.post(f"/api/payment-requests/{other['id']}/mark-paid", {"method": "cash"})
    clock.advance(timedelta(days=4))
    assert await sweep() == (0, 0)


# --- Stripe ---------------------------------------------------------------------------------


class StripeStandIn:
    """Answers what Stripe's API answers to the two calls we make, on loopback."""

    def __init__(self) -> None:
        self.sessions: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self.create)
        return app

    async def create(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.headers.append(dict(request.headers))
        idempotency = request.headers.get("Idempotency-Key")
        for earlier in self.sessions:
            if earlier["_key"] == idempotency:
                return web.json_response(earlier["_answer"])
        session_id = f"cs_test_{len(self.sessions) + 1}"
        answer = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": int(str(form["line_items[0][price_data][unit_amount]"])),
            "currency": form["line_items[0][price_data][currency]"],
            "client_reference_id": form["client_reference_id"],
            "metadata": {"payment_request_id": form["metadata[payment_request_id]"]},
        }
        self.sessions.append({"_key": idempotency, "_answer": answer, "form": form})
        return web.json_response(answer)


def signed(event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(event).encode()
    stamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return payload, {
        "Stripe-Signature": f"t={stamp},v1={signature.hexdigest()}",
        "Content-Type": "application/json",
    }


def completed(event_id: str, session: dict[str, Any], amount: int | None = None) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                **session,
                "payment_status": "paid",
                "status": "complete",
                "amount_total": session["amount_total"] if amount is None else amount,
            }
        },
    }


async def _webhook(server: TestServer, payload: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.make_url("/api/payments/stripe/webhook"), data=payload, headers=headers
        ) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def test_stripe_checkout_and_webhook_replayed(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    aiohttp_server: Any,
) -> None:
    stand_in = StripeStandIn()
    stripe_api = await aiohttp_server(stand_in.app())
    server = await start_server(
        payment_provider="stripe",
        stripe_secret_key="sk_test_123",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=str(stripe_api.make_url("")).rstrip("/"),
    )
    doctor, patient = client_of(server), client_of(server)
    await doctor.register(
        email="d@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(3),
    )
    await patient.register(email="p@example.fr", first_name="Paul", last_name="Petit")
    cid = await connect(doctor, patient)
    asked = await _ask(doctor, cid)
    assert asked["online_payment"] and asked["provider"] == "stripe"
    assert (await doctor.post(f"/api/payment-requests/{asked['id']}/checkout")).status == 403
    started = await patient.post(f"/api/payment-requests/{asked['id']}/checkout")
    assert (
        started.status == 200
        and started.body["url"] == "https://checkout.stripe.test/c/pay/cs_test_1"
    )
    again = await patient.post(f"/api/payment-requests/{asked['id']}/checkout")
    assert again.body["url"] == started.body["url"] and len(stand_in.sessions) == 1
    [sent] = stand_in.sessions
    assert sent["form"]["line_items[0][price_data][unit_amount]"] == "2500"
    assert sent["form"]["line_items[0][price_data][currency]"] == "eur"
    assert (
        sent["form"]["line_items[0][price_data][product_data][name]"] == "Téléconsultation du 23/11"
    )
    assert sent["form"]["customer_email"] == "p@example.fr"
    assert sent["form"]["success_url"] == f"{asked['pay_url']}?retour=paye"
    assert stand_in.headers[0]["Authorization"] == "Bearer sk_test_123"
    session = sent["_answer"]

    forged_payload, forged_headers = signed(completed("evt_forged", session), secret="whsec_wrong")
    status, body = await _webhook(server, forged_payload, forged_headers)
    assert status == 422 and "Signature" in body["detail"]
    underpaid = signed(completed("evt_underpaid", session, amount=100))
    assert (await _webhook(server, *underpaid))[1]["outcome"] == "ignored"
    assert (await patient.get(f"/api/payment-requests/{asked['id']}")).body["status"] == "requested"
    # The right number in another currency is not the amount asked.
    in_dollars = signed(completed("evt_usd", {**session, "currency": "usd"}))
    assert (await _webhook(server, *in_dollars))[1]["outcome"] == "ignored"
    assert (await patient.get(f"/api/payment-requests/{asked['id']}")).body["status"] == "requested"
    # A signed event larger than our own JSON bodies (64 KiB) is still read and checked.
    large = signed(completed("evt_large", {**session, "x": "y" * 100_000}, amount=100))
    status, body = await _webhook(server, *large)
    assert status == 200 and body["outcome"] == "ignored", body

    payload, headers = signed(completed("evt_1", session))
    status, body = await _webhook(server, payload, headers)
    assert status == 200 and body["outcome"] == "paid"
    first = (await patient.get(f"/api/payment-requests/{asked['id']}")).body
    assert first["status"] == "paid" and first["paid_method"] == "online"
    status, body = await _webhook(server, payload, headers)  # Stripe delivers it again
    assert status == 200 and body["outcome"] == "duplicate"
    assert (await patient.get(f"/api/payment-requests/{asked['id']}")).body == first
    # Paid: nothing more to pay online.
    assert (await patient.post(f"/api/payment-requests/{asked['id']}/checkout")).status == 409


async def test_webhook_without_stripe_configured_is_unknown(server: TestServer) -> None:
    payload, headers = signed({"id": "evt", "type": "checkout.session.completed"})
    status, body = await _webhook(server, payload, headers)
    assert status == 404 and body["status"] == 404


async def test_what_is_owed_is_the_total_still_requested_whatever_is_listed(
    doctor: Client, patient: Client
) -> None:
    """The total was summed over the page listed: filtered on paid requests it said 0 €."""
    cid = await connect(doctor, patient)
    first = await _ask(doctor, cid, client_id="a")
    await _ask(doctor, cid, amount_cents=3000, client_id="b")
    paid = await doctor.post(f"/api/payment-requests/{first['id']}/mark-paid", {"method": "cash"})
    assert paid.status == 200, paid
    for who in (doctor, patient):
        for query in ("", "?status=paid", "?status=requested"):
            listed = (await who.get(f"/api/payment-requests{query}")).body
            assert listed["owed_cents"] == 3000, (query, listed)
