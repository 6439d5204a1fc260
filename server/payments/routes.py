"""HTTP routes for payment requests and the payment provider's webhook."""

from __future__ import annotations

from typing import Any, Literal

import phonenumbers
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from stdnum import iban as stdnum_iban

from server.accounts.auth import require_user
from server.conversations import announce
from server.errors import NotFound
from server.events import conversation_room, user_room
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body, parse_query, read_body
from server.http.serialize import iso, person_json
from server.models import PaymentRequest, Role, User
from server.payments import details as payment_details
from server.payments import online, service
from server.services import Services
from server.values import MaybeBic, MaybeIban, MaybePhone

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


class DetailsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holder: str | None = Field(default=None, max_length=140)
    iban: MaybeIban = None
    bic: MaybeBic = None
    phone: MaybePhone = None
    cheque_payee: str | None = Field(default=None, max_length=140)
    address: str | None = Field(default=None, max_length=500)


def _clean(text: str | None) -> str | None:
    """A blank optional text is "not given"; inner lines of an address are kept."""
    if text is None:
        return None
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    kept = "\n".join(line for line in lines if line)
    return kept or None


def details_json(details: Any) -> dict[str, Any]:
    """The details as shown to people: IBAN in groups of four, telephone the French way."""
    if details is None:
        return {
            "holder": None,
            "iban": None,
            "bic": None,
            "phone": None,
            "phone_display": None,
            "cheque_payee": None,
            "address": None,
        }
    phone_display = None
    if details.phone:
        number = phonenumbers.parse(details.phone, None)
        phone_display = phonenumbers.format_number(
            number,
            phonenumbers.PhoneNumberFormat.NATIONAL
            if number.country_code == 33
            else phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        )
    return {
        "holder": details.holder,
        "iban": stdnum_iban.format(details.iban) if details.iban else None,
        "bic": details.bic,
        "phone": details.phone,
        "phone_display": phone_display,
        "cheque_payee": details.cheque_payee,
        "address": details.address,
    }


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
        # The pay page tells how to pay other than online: the payee's own details.
        body["payee_details"] = details_json(await payment_details.get_details(db, found.payee_id))
    return web.json_response(body)


@routes.get("/api/me/payment-details")
@documented("Professional: the bank details, telephone and address shown on my pay pages")
async def get_details(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, Role.DOCTOR, Role.NURSE)
        found = await payment_details.get_details(db, user.id)
    return web.json_response(details_json(found), headers={"Cache-Control": "no-store"})


@routes.put("/api/me/payment-details")
@documented(
    "Professional: set how patients may pay other than online (IBAN and BIC checked)",
    body=DetailsBody,
)
async def put_details(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, Role.DOCTOR, Role.NURSE)
        data = await parse_body(request, DetailsBody)
        saved = await payment_details.put_details(
            db,
            services,
            user,
            payment_details.NewDetails(
                holder=_clean(data.holder),
                iban=data.iban,
                bic=data.bic,
                phone=data.phone,
                cheque_payee=_clean(data.cheque_payee),
                address=_clean(data.address),
            ),
            ip=client_ip(request),
        )
        await db.commit()
        body = details_json(saved)
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
