"""Payment providers behind one small interface.

The built-in provider needs no third party: the request is recorded, the patient pays the way the
practice accepts (transfer, cheque, card on its terminal), and the practice confirms. The Stripe
provider adds an online card payment through Stripe Checkout; Stripe tells us it was paid through
a signed webhook. A doctor may not impose a way to pay (CSP R.4127-53), so the page always offers
the practice's own ways beside any online one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import stripe

from server.errors import Conflict, InvalidInput, MalformedRequest


@dataclass(frozen=True)
class Checkout:
    url: str  # where the patient's browser goes to pay
    reference: str  # the provider's id for it


@dataclass(frozen=True)
class Notification:
    """What a provider's webhook says, once its signature is checked."""

    event_id: str
    kind: str
    reference: str | None  # the provider's id given at checkout
    request_id: str | None  # our payment request id, echoed back
    paid: bool
    amount_cents: int | None = None
    currency: str | None = None  # ISO 4217, upper case


@dataclass(frozen=True)
class CheckoutOrder:
    request_id: str
    amount_cents: int
    currency: str
    label: str
    success_url: str
    cancel_url: str
    email: str | None
    # Same key, same checkout: a double click or a retried call creates one session.
    idempotency_key: str


class PaymentProvider(Protocol):
    name: str
    online: bool  # can the patient pay on the web?

    async def checkout(self, order: CheckoutOrder) -> Checkout: ...

    def notification(self, payload: bytes, headers: dict[str, str]) -> Notification: ...


class BuiltinProvider:
    """No online payment: the practice marks the request paid when the money has arrived."""

    name = "builtin"
    online = False

    async def checkout(self, order: CheckoutOrder) -> Checkout:
        raise Conflict(
            "Le paiement en ligne n'est pas proposé par ce cabinet : réglez par virement, "
            "chèque ou carte au cabinet, qui confirmera la réception."
        )

    def notification(self, payload: bytes, headers: dict[str, str]) -> Notification:
        raise MalformedRequest("Aucun prestataire de paiement en ligne n'est configuré.")


class StripeProvider:
    """Stripe Checkout through the official library, on the application's aiohttp session."""

    name = "stripe"
    online = True

    def __init__(
        self, secret_key: str, webhook_secret: str, api_base: str, http: aiohttp.ClientSession
    ) -> None:
        self.webhook_secret = webhook_secret
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            http_client=stripe.AIOHTTPClient(session=http),
            max_network_retries=2,
        )

    async def checkout(self, order: CheckoutOrder) -> Checkout:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": order.currency.lower(),
                        "unit_amount": order.amount_cents,
                        "product_data": {"name": order.label},
                    },
                }
            ],
            "client_reference_id": order.request_id,
            "metadata": {"payment_request_id": order.request_id},
            "success_url": order.success_url,
            "cancel_url": order.cancel_url,
        }
        if order.email:
            params["customer_email"] = order.email
        try:
            session = await self.client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": order.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise Conflict(
                "Le paiement en ligne est indisponible pour le moment ; réessayez plus tard "
                f"ou réglez directement au cabinet ({exc.__class__.__name__})."
            ) from exc
        if not session.url:
            raise Conflict("Le prestataire de paiement n'a pas donné de page de paiement.")
        return Checkout(url=session.url, reference=session.id)

    def notification(self, payload: bytes, headers: dict[str, str]) -> Notification:
        try:
            event = stripe.Webhook.construct_event(
                payload, headers.get("Stripe-Signature"), self.webhook_secret
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidInput("Signature Stripe invalide : notification ignorée.") from exc
        except ValueError as exc:
            raise MalformedRequest("Notification Stripe illisible.") from exc
        data: dict[str, Any] = event["data"]["object"].to_dict()  # a plain dict, nested too
        metadata = data.get("metadata") or {}
        paid = event["type"] in {
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
        } and data.get("payment_status") in {"paid", "no_payment_required"}
        return Notification(
            event_id=str(event["id"]),
            kind=str(event["type"]),
            reference=data.get("id"),
            request_id=metadata.get("payment_request_id") or data.get("client_reference_id"),
            paid=paid,
            amount_cents=data.get("amount_total"),
            currency=str(data["currency"]).upper() if data.get("currency") else None,
        )
