"""HTTP routes for invitations (doctor side, and the public side behind the link's token)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import date

from aiohttp import web
from pydantic import BaseModel, ConfigDict, model_validator

from server import limits
from server.accounts.auth import optional_user, require_user
from server.accounts.service import open_session
from server.errors import Conflict, Gone, MalformedRequest, NotFound
from server.http.auth import client_ip, set_session_cookie
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body
from server.http.serialize import iso
from server.invitations import service
from server.invitations.delivery import deliver
from server.invitations.serialize import invitation_json
from server.models import Invitation, InvitationStatus, Role
from server.services import Services
from server.values import MaybeEmail, MaybePhone, Password, PersonName

routes = web.RouteTableDef()
PRACTITIONERS = (Role.DOCTOR, Role.NURSE)


class InvitationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: PersonName
    last_name: PersonName
    email: MaybeEmail = None
    phone: MaybePhone = None

    @model_validator(mode="after")
    def _one_contact(self) -> InvitationBody:
        if not self.email and not self.phone:
            raise ValueError(
                "indiquez l'adresse e-mail ou le numéro de téléphone du patient "
                "(au moins l'un des deux)"
            )
        return self


class InvitationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: MaybeEmail = None
    phone: MaybePhone = None


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password | None = None
    email: MaybeEmail = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    phone: MaybePhone = None
    birth_date: date | None = None
    accept_privacy: bool = False


async def _answer(
    services: Services, invitation_id: str, delivery_id: str, status: int = 200
) -> web.Response:
    """Make the first delivery attempt now, so the doctor sees at once whether it left."""
    await deliver(services, delivery_id)
    async with services.sessionmaker() as db:
        invitation = await db.get(Invitation, invitation_id)
        assert invitation is not None
        delivery = await service.latest_delivery(db, invitation_id)
    return web.json_response(
        invitation_json(invitation, delivery, services.clock.now()), status=status
    )


@routes.post("/api/invitations")
@documented("Invite a patient by email (or SMS when only a phone is given)", body=InvitationBody)
async def create(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        doctor = await require_user(request, db, *PRACTITIONERS)
        body = await parse_body(request, InvitationBody)
        invitation, delivery = await service.create_invitation(
            db,
            services,
            doctor,
            service.Invitee(body.first_name, body.last_name, body.email, body.phone),
            ip=client_ip(request),
        )
        await db.commit()
    return await _answer(services, invitation.id, delivery.id, status=201)


@routes.get("/api/invitations")
@documented("The caller's invitations, newest first")
async def list_(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        doctor = await require_user(request, db, *PRACTITIONERS)
        rows = await service.list_invitations(db, doctor)
    now = services.clock.now()
    return web.json_response({"items": [invitation_json(i, d, now) for i, d in rows]})


@routes.patch("/api/invitations/{id}")
@documented(
    "Correct a pending invitation and send it to the corrected address", body=InvitationPatch
)
async def correct(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        doctor = await require_user(request, db, *PRACTITIONERS)
        body = await parse_body(request, InvitationPatch)
        changes = body.model_dump(exclude_unset=True)
        if not changes:
            raise MalformedRequest("Rien à corriger : indiquez au moins un champ.")
        invitation, delivery = await service.correct_invitation(
            db, services, doctor, request.match_info["id"], changes, ip=client_ip(request)
        )
        await db.commit()
    return await _answer(services, invitation.id, delivery.id)


@routes.post("/api/invitations/{id}/resend")
@documented("Send a pending invitation again (new link, valid 15 days)")
async def resend(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        doctor = await require_user(request, db, *PRACTITIONERS)
        invitation, delivery = await service.resend_invitation(
            db, services, doctor, request.match_info["id"], ip=client_ip(request)
        )
        await db.commit()
    return await _answer(services, invitation.id, delivery.id)


@routes.post("/api/invitations/{id}/cancel")
@documented("Cancel an invitation; its link stops working")
async def cancel(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        doctor = await require_user(request, db, *PRACTITIONERS)
        invitation = await service.cancel_invitation(
            db, services, doctor, request.match_info["id"], ip=client_ip(request)
        )
        await db.commit()
        delivery = await service.latest_delivery(db, invitation.id)
    return web.json_response(invitation_json(invitation, delivery, services.clock.now()))


def _probes(services: Services, ip: str | None) -> AbstractAsyncContextManager[None]:
    """A link that does not exist (or no longer works), or an acceptance whose address already
    has an account, tells a prober something: a few such answers an hour per address."""
    return services.limiter.answers_that_tell(
        f"probe:invitation:{ip}",
        limits.INVALID_INVITATION_LINKS_PER_HOUR,
        limits.PROBE_WINDOW,
        "Trop de liens d'invitation non valables essayés depuis cette adresse. "
        "Réessayez plus tard, ou demandez à votre praticien de vous renvoyer l'invitation.",
        telling=(NotFound, Gone, Conflict),
    )


@routes.get("/api/invitations/token/{token}")
@documented("What the invitation link shows (public)", public=True)
async def show_token(request: web.Request) -> web.Response:
    services = services_of(request)
    async with _probes(services, client_ip(request)), services.sessionmaker() as db:
        invitation, doctor = await service.find_by_token(db, services, request.match_info["token"])
        user = await optional_user(request, db)
    now = services.clock.now()
    return web.json_response(
        {
            "status": service.effective_status(invitation, now),
            "expires_at": iso(invitation.expires_at),
            "doctor": {
                "first_name": doctor.first_name,
                "last_name": doctor.last_name,
                "role": doctor.role,
                "display_name": doctor.display_name,
                "specialty": doctor.specialty,
            },
            "first_name": invitation.first_name,
            "last_name": invitation.last_name,
            # Prefills the sign-up form; the patient may change it.
            "email": invitation.email,
            "signed_in_as": {"first_name": user.first_name, "role": user.role} if user else None,
        }
    )


@routes.post("/api/invitations/token/{token}/accept")
@documented(
    "Accept an invitation, signed in as a patient or creating the account with the body",
    body=AcceptBody,
    public=True,
)
async def accept(request: web.Request) -> web.Response:
    services = services_of(request)
    ip = client_ip(request)
    body = await parse_body(request, AcceptBody)
    async with _probes(services, ip), services.sessionmaker() as db:
        user = await optional_user(request, db)
        signup = None
        if user is None and body.password is not None:
            signup = service.Signup(
                password=body.password,
                email=body.email,
                first_name=body.first_name,
                last_name=body.last_name,
                phone=body.phone,
                birth_date=body.birth_date,
                privacy_accepted=body.accept_privacy,
            )
        result = await service.accept_invitation(
            db, services, request.match_info["token"], user=user, signup=signup, ip=ip
        )
        token = None
        if result.account_created:
            token = await open_session(
                db, services, result.patient, ip=ip, user_agent=request.headers.get("User-Agent")
            )
        await db.commit()
    response = web.json_response(
        {
            "conversation_id": result.conversation_id,
            "status": InvitationStatus.ACCEPTED,
            "account_created": result.account_created,
        }
    )
    if token:
        set_session_cookie(request, response, token)
    return response
