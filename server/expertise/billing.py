"""Billing a tele-expertise: RQD for the requester, TE2 for the expert who answered, proposed
from the request's facts and checked by the rules engine (billed alone, four a year per patient
per professional, the report written, the requester as prescriber of the TE2, dated tariffs),
recorded in the billing records and in the same export as calls (billing.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.billing import rules
from server.billing.nir import NirError, parse_nir
from server.clock import PARIS
from server.errors import Conflict, Forbidden, InvalidInput
from server.expertise.requests import visible_request
from server.models import (
    BillingProfile,
    BillingRecord,
    ExpertiseRequest,
    ExpertiseStatus,
    User,
)
from server.services import Services


@dataclass(frozen=True)
class Context:
    request: ExpertiseRequest
    professional: User
    role: str  # requester | expert
    expertise: rules.Expertise
    existing: BillingRecord | None


def _act_date(request: ExpertiseRequest) -> date:
    moment = request.answered_at or request.rejected_at or request.created_at
    return moment.astimezone(PARIS).date()


async def _earlier_this_year(
    db: AsyncSession, professional: User, request: ExpertiseRequest, day: date
) -> int:
    """This professional's tele-expertise records this year for the same patient (by NIR, else
    by name and birth date: the patient has no account)."""
    same_patient = (
        BillingRecord.patient_nir == request.patient_nir
        if request.patient_nir
        else (
            (func.lower(BillingRecord.patient_last_name) == request.patient_last_name.lower())
            & (func.lower(BillingRecord.patient_first_name) == request.patient_first_name.lower())
            & (BillingRecord.patient_birth_date == request.patient_birth_date)
        )
    )
    count = await db.scalar(
        select(func.count(BillingRecord.id)).where(
            BillingRecord.professional_id == professional.id,
            BillingRecord.expertise_request_id.is_not(None),
            BillingRecord.expertise_request_id != request.id,
            BillingRecord.act_date >= date(day.year, 1, 1),
            BillingRecord.act_date <= date(day.year, 12, 31),
            same_patient,
        )
    )
    return int(count or 0)


async def context_of(db: AsyncSession, user: User, request_id: str) -> Context:
    request = await visible_request(db, user, request_id)
    if request.requester_id == user.id:
        role = "requester"
    elif request.answered_by_id == user.id:
        role = "expert"
    else:
        raise Forbidden(
            "Facturent cette téléexpertise : le demandeur (RQD) et l'expert qui a répondu (TE2)."
        )
    if request.status not in (
        ExpertiseStatus.ANSWERED,
        ExpertiseStatus.CLOSED,
        ExpertiseStatus.REJECTED,
    ):
        raise Conflict("La téléexpertise se facture une fois l'avis rendu.")
    day = _act_date(request)
    profile = await db.get(BillingProfile, user.id)
    requester = await db.get(User, request.requester_id)
    expertise = rules.Expertise(
        role=role,
        professional=rules.Professional(user.role, user.specialty, user.sector),
        act_date=day,
        rejected=request.status == ExpertiseStatus.REJECTED,
        report_written=request.report_document_id is not None,
        requester_identifier=requester.rpps if requester else None,
        this_year_for_patient=await _earlier_this_year(db, user, request, day),
        overseas=bool(profile and profile.overseas),
    )
    existing = await db.scalar(
        select(BillingRecord).where(
            BillingRecord.expertise_request_id == request.id,
            BillingRecord.professional_id == user.id,
        )
    )
    return Context(request, user, role, expertise, existing)


def expected_code(context: Context) -> str:
    return "RQD" if context.role == "requester" else "TE2"


def propose(context: Context) -> rules.Outcome:
    return rules.check_expertise(context.expertise, [rules.ChosenAct(expected_code(context))])


async def record(
    db: AsyncSession,
    services: Services,
    user: User,
    request_id: str,
    chosen: list[rules.ChosenAct],
    *,
    nir: str | None,
    birth_rank: int,
    ip: str | None,
) -> BillingRecord:
    """Validate and keep the coding (the caller commits); 422 listing each broken rule."""
    context = await context_of(db, user, request_id)
    if context.existing is not None:
        raise Conflict(
            "Cette téléexpertise est déjà cotée pour vous.",
            extra={"record_id": context.existing.id},
        )
    request = context.request
    outcome = rules.check_expertise(context.expertise, chosen)
    number = nir or request.patient_nir
    if number is None:
        outcome.refuse("NIR du patient : requis pour la feuille de soins.")
    else:
        try:
            number = parse_nir(number).full
        except NirError as exc:
            outcome.refuse(str(exc))
    if outcome.errors:
        details = [e.detail for e in outcome.errors]
        raise InvalidInput(
            f"Cotation refusée ({len(details)} règle{'s' if len(details) > 1 else ''}) : "
            + " ".join(details),
            extra={
                "errors": [{"code": e.code, "detail": e.detail} for e in outcome.errors],
                "warnings": outcome.warnings,
            },
        )
    assert number is not None
    profile = await db.get(BillingProfile, user.id)
    requester = await db.get(User, request.requester_id)
    row = BillingRecord(
        call_id=None,
        expertise_request_id=request.id,
        professional_id=user.id,
        created_by_id=user.id,
        patient_id=None,
        patient_first_name=request.patient_first_name,
        patient_last_name=request.patient_last_name,
        act_date=context.expertise.act_date,
        acts=[
            {"code": a.code, "amount_cents": a.amount_cents, "label": a.label} for a in outcome.acts
        ],
        total_cents=outcome.total_cents,
        currency="EUR",
        patient_nir=number,
        patient_birth_date=request.patient_birth_date,
        birth_rank=birth_rank,
        professional_role=user.role,
        professional_rpps=user.rpps,
        professional_am_number=profile.am_number if profile else None,
        # The requester's identifier goes in the TE2's prescriber field (billing.md).
        prescriber_rpps=requester.rpps if context.role == "expert" and requester else None,
        teleconsultation=False,
        warnings=outcome.warnings,
        created_at=services.clock.now(),
    )
    db.add(row)
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent POST won
        raise Conflict("Cette téléexpertise est déjà cotée pour vous.") from exc
    audit.record(
        db,
        services.clock,
        "billing.recorded",
        actor_id=user.id,
        ip=ip,
        resource_type="expertise_request",
        resource_id=request.id,
        details={"record_id": row.id, "acts": [a.code for a in outcome.acts]},
    )
    return row
