"""HTTP routes for payment requests and the payment provider's webhook."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.accounts.auth import require_user
from server.conversations import announce
from server.errors import NotFound
from server.events import conversation_room, user_room
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body, parse_query, read_body
from server.http.serialize import iso, person_json
from server.models import PaymentRequest, User
from server.payments import online, service
from server.services import Services

routes = web.RouteTableDef()
WEBHOOK_MAX_BYTES = 256 * 1024


class PaymentRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: int
    currency: str = "EUR"
    label: str = Field(min_length=1, max_length=200)
    call_id: str | None = Field(default=None, max_length=64)
    client_id: str | None = Field(default=None, min_length=1, max_length=64)


class PaidBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["transfer", "card_terminal", "cheque", "cash", "other"]


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["requested", "paid", "cancelled", "expired"] | None = None


def request_json(
    services: Services, request: PaymentRequest, people: dict[str, User] | None = None
) -> dict[str, Any]:
    people = people or {}
    body: dict[str, Any] = {
        "id": request.id,
        "conversation_id": request.conversation_id,
        "status": request.status,
        "amount_cents": request.amount_cents,
        "currency": request.currency,
        "label": request.label,
        "pay_url": service.pay_url(services, request.id),
        "provider": request.provider,
        "online_payment": services.payments.online,
        "call_id": request.call_id,
        "message_id": request.message_id,
        "created_at": iso(request.created_at),
        "expires_at": iso(request.expires_at),
        "paid_at": iso(request.paid_at),
        "paid_method": request.paid_method,
        "cancelled_at": iso(request.cancelled_at),
        "reminders_sent": request.reminders_sent,
        "payee_id": request.payee_id,
        "patient_id": request.patient_id,
    }
    if request.payee_id in people:
        payee = people[request.payee_id]
        body["payee"] = person_json(payee)
    if request.patient_id in people:
        body["patient"] = person_json(people[request.patient_id])
    return body


async def _people(db: Any, requests: list[PaymentRequest]) -> dict[str, User]:
    ids = {r.payee_id for r in requests} | {r.patient_id for r in requests}
    return {user_id: await db.get_one(User, user_id) for user_id in ids}


async def _publish(services: Services, body: dict[str, Any]) -> None:
    """Open pages of the conversation and of the payee learn the new status."""
    await services.events.publish(
        "payment:updated", body, room=conversation_room(body["conversation_id"])
    )
    await services.events.publish("payment:updated", body, room=user_room(body["payee_id"]))


@routes.post("/api/conversations/{id}/payment-requests")
@documented(
    "Doctor or secretary: ask the patient to pay (posts the pay link in the conversation)",
    body=PaymentRequestBody,
)
async def create(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, PaymentRequestBody)
        done = await service.create_request(
            db,
            services,
            user,
            request.match_info["id"],
            service.NewPaymentRequest(
                amount_cents=data.amount_cents,
                currency=data.currency.upper(),
                label=data.label,
                call_id=data.call_id,
                client_id=data.client_id,
            ),
            ip=client_ip(request),
        )
        message, members = await announce.prepare(db, done.posted)
        body = request_json(services, done.request, await _people(db, [done.request]))
    await announce.announce(services, done.posted, message, members)
    return web.json_response(body, status=201 if done.posted.created else 200)


@routes.get("/api/conversations/{id}/payment-requests")
@documented("The payment requests of a conversation, newest first")
async def of_conversation(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        items = await service.list_requests(db, user, conversation_id=request.match_info["id"])
        people = await _people(db, items)
    return web.json_response({"items": [request_json(services, r, people) for r in items]})


@routes.get("/api/payment-requests")
@documented(
    "What the caller is owed (doctor, secretary) or owes (patient); ?status= filters",
    query=ListQuery,
)
async def list_(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        query = parse_query(request, ListQuery)
        items = await service.list_requests(db, user, status=query.status)
        people = await _people(db, items)
        owed = await service.owed_cents(db, user)
    return web.json_response(
        {
            "items": [request_json(services, r, people) for r in items],
            "owed_cents": owed,
            "currency": "EUR",
        }
    )


@routes.get("/api/payment-requests/{id}")
@documented("One payment request: amount, label, status")
async def show(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        found = await service.get_request(db, services, user, request.match_info["id"])
        body = request_json(services, found, await _people(db, [found]))
    return web.json_response(body)


@routes.post("/api/payment-requests/{id}/cancel")
@documented("Doctor or secretary: cancel a request not yet paid")
async def cancel(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        found = await service.cancel(
            db, services, user, request.match_info["id"], ip=client_ip(request)
        )
        body = request_json(services, found, await _people(db, [found]))
    await _publish(services, body)
    return web.json_response(body)


@routes.post("/api/payment-requests/{id}/mark-paid")
@documented(
    "Doctor or secretary: confirm a payment received at the practice (transfer, card, …)",
    body=PaidBody,
)
async def mark_paid(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, PaidBody)
        found = await service.mark_paid(
            db, services, user, request.match_info["id"], data.method, ip=client_ip(request)
        )
        body = request_json(services, found, await _people(db, [found]))
    await _publish(services, body)
    return web.json_response(body)


@routes.post("/api/payment-requests/{id}/checkout")
@documented("Patient: start paying online; answers the provider's page address")
async def checkout(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        url = await online.checkout(db, services, services.payments, user, request.match_info["id"])
    return web.json_response({"url": url})


@routes.post("/api/payments/stripe/webhook")
@documented("Stripe's signed notifications (checkout.session.completed, …)", public=True)
async def stripe_webhook(request: web.Request) -> web.Response:
    services = services_of(request)
    if services.payments.name != "stripe":
        raise NotFound("Le paiement Stripe n'est pas configuré sur ce serveur.")
    # Signed events run larger than our own JSON bodies: their own limit, read in full.
    payload = await read_body(request, WEBHOOK_MAX_BYTES, "Notification trop volumineuse.")
    async with services.sessionmaker() as db:
        outcome, found = await online.handle_notification(
            db, services, services.payments, payload, dict(request.headers)
        )
        body = request_json(services, found) if found is not None else None
    if outcome == "paid" and body is not None:
        await _publish(services, body)
    return web.json_response({"received": True, "outcome": outcome})
