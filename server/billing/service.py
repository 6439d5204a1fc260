"""Billing of a call: the situation read from the call record, the proposal, the validated
record, and the export for the practice's billing software."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.billing import export, rules
from server.billing.nir import NirError, parse_nir
from server.calls.proof import Proof
from server.calls.service import access_call, video_proof
from server.clock import PARIS
from server.conversations.service import ConversationView
from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.models import (
    BillingProfile,
    BillingRecord,
    Call,
    CallPeer,
    Role,
    SecretaryAssignment,
    User,
)
from server.services import Services

EXEMPTIONS = ("none", "ald", "maternity", "work_accident", "css", "ame", "invalidity", "other")


@dataclass(frozen=True)
class PatientForm:
    nir: str | None = None
    birth_date: date | None = None
    birth_rank: int = 1
    scheme: str | None = None  # régime (e.g. "01" régime général)
    fund: str | None = None  # caisse (e.g. "751")
    postcode: str | None = None


@dataclass(frozen=True)
class BillingForm:
    """What the professional tells beyond the call record."""

    pathway: rules.Pathway | None = None
    report_sent: bool = False
    has_treating_doctor: bool | None = None
    place: rules.Place | None = None
    exemption: str | None = None
    patient: PatientForm = field(default_factory=PatientForm)


@dataclass(frozen=True)
class Context:
    call: Call
    view: ConversationView
    professional: User
    profile: BillingProfile | None
    situation: rules.Situation
    existing: BillingRecord | None


async def _took_part(db: AsyncSession, call: Call, user: User) -> bool:
    if call.created_by_id == user.id or call.nurse_id == user.id:
        return True
    peer = await db.scalar(
        select(CallPeer.id).where(CallPeer.call_id == call.id, CallPeer.user_id == user.id).limit(1)
    )
    return peer is not None


async def _professional(db: AsyncSession, call: Call, view: ConversationView, user: User) -> User:
    """Whose act is coded: the caller's own; a secretary codes for the call's doctor."""
    if user.role == Role.PATIENT or user.role == Role.ADMIN:
        raise Forbidden("La cotation est faite par le professionnel qui a réalisé l'acte.")
    if user.role == Role.SECRETARY:
        doctor = await db.get_one(User, call.created_by_id)
        assigned = await db.scalar(
            select(SecretaryAssignment.doctor_id).where(
                SecretaryAssignment.secretary_id == user.id,
                SecretaryAssignment.doctor_id == doctor.id,
            )
        )
        if assigned is None:
            raise Forbidden("Vous ne gérez pas la facturation de ce médecin.")
        return doctor
    if user.role == Role.NURSE and call.nurse_id != user.id:
        raise Forbidden("Vous n'avez pas accompagné cette téléconsultation.")
    if not await _took_part(db, call, user):
        raise Forbidden("Vous n'avez pas participé à cette téléconsultation.")
    return user


async def _counted_this_year(db: AsyncSession, professional: User, year: int) -> int:
    """This year's teleconsultations that count towards the cap (not a treating doctor's own
    patients, whose records say pathway "treating_doctor")."""
    count = await db.scalar(
        select(func.count(BillingRecord.id)).where(
            BillingRecord.professional_id == professional.id,
            BillingRecord.act_date >= date(year, 1, 1),
            BillingRecord.act_date <= date(year, 12, 31),
            BillingRecord.teleconsultation.is_(True),  # tele-expertises are not counted
            func.coalesce(BillingRecord.pathway, "") != rules.Pathway.TREATING_DOCTOR,
        )
    )
    return int(count or 0)


def _shortfall(call: Call, professional: User, proof: Proof, came: bool) -> str | None:
    """In words, what the call's record lacks for a video act (None when nothing)."""
    if proof.seconds >= rules.MIN_VIDEO_SECONDS:
        return None
    # (the other side, "of" it, "to" it)
    nurse_act = professional.role == Role.NURSE and call.nurse_id == professional.id
    who, of, to = (
        ("le médecin", "du médecin", "au médecin")
        if nurse_act
        else ("le patient", "du patient", "au patient")
    )
    if not came:
        return f"{who} n'a pas rejoint l'appel"
    if proof.one_way < rules.MIN_VIDEO_SECONDS:
        return f"la vidéo {of} ne vous est pas parvenue"
    if proof.other_way < rules.MIN_VIDEO_SECONDS:
        return f"votre vidéo n'est pas parvenue {to}"
    return "vous ne vous êtes pas vus en même temps assez longtemps"


async def context_of(
    db: AsyncSession, services: Services, user: User, call_id: str, form: BillingForm
) -> Context:
    call, view = await access_call(db, user, call_id)
    professional = await _professional(db, call, view, user)
    profile = await db.get(BillingProfile, professional.id)
    proof, came = await video_proof(db, call, view.conversation, professional)
    act_date = call.created_at.astimezone(PARIS).date()
    existing = await db.scalar(
        select(BillingRecord).where(
            BillingRecord.call_id == call.id, BillingRecord.professional_id == professional.id
        )
    )
    place = form.place
    if place is None and call.assistance_place:
        place = rules.Place(call.assistance_place)
    situation = rules.Situation(
        professional=rules.Professional(
            professional.role, professional.specialty, professional.sector
        ),
        act_date=act_date,
        video_seconds=proof.seconds,
        video_shortfall=_shortfall(call, professional, proof, came),
        patient_birth_date=form.patient.birth_date or view.patient.birth_date,
        pathway=form.pathway,
        report_sent=form.report_sent,
        has_treating_doctor=form.has_treating_doctor,
        nurse_assistance=call.assistance if professional.role == Role.NURSE else None,
        place=place if professional.role == Role.NURSE else None,
        overseas=bool(profile and profile.overseas),
        patient_postcode=form.patient.postcode,
        practice_postcode=profile.practice_postcode if profile else None,
        counted_teleconsultations=await _counted_this_year(db, professional, act_date.year),
        yearly_acts=profile.yearly_acts if profile else None,
    )
    return Context(call, view, professional, profile, situation, existing)


def _nir_and_birth(form: PatientForm, out: rules.Outcome) -> str | None:
    if not form.nir:
        out.refuse(
            "NIR du patient manquant : il est obligatoire en SESAM-sans-Vitale (15 caractères "
            "de la carte Vitale ou de l'attestation)."
        )
        return None
    try:
        nir = parse_nir(form.nir)
    except NirError as exc:
        out.refuse(str(exc))
        return None
    for warning in nir.warnings:
        out.warn(warning)
    birth = form.birth_date
    if birth is not None and (
        nir.birth_year_2 != f"{birth.year % 100:02d}"
        or (1 <= nir.birth_month <= 12 and nir.birth_month != birth.month)
    ):
        out.warn(
            "La date de naissance ne correspond pas à l'année et au mois du NIR : "
            "vérifiez l'une et l'autre."
        )
    return nir.full


async def record(
    db: AsyncSession,
    services: Services,
    user: User,
    call_id: str,
    chosen: list[rules.ChosenAct],
    form: BillingForm,
    *,
    ip: str | None,
) -> BillingRecord:
    """Validate the coding against every rule; keep it, or refuse with each broken rule."""
    context = await context_of(db, services, user, call_id, form)
    if context.existing is not None:
        raise Conflict(
            "Cette téléconsultation est déjà cotée pour ce professionnel.",
            extra={"record_id": context.existing.id},
        )
    if form.exemption is not None and form.exemption not in EXEMPTIONS:
        raise InvalidInput(f"exemption : {', '.join(EXEMPTIONS)}")
    outcome = rules.check(context.situation, chosen)
    nir = _nir_and_birth(form.patient, outcome)
    if form.patient.birth_date is None:
        outcome.refuse(
            "Date de naissance du patient manquante : elle figure sur la feuille de soins."
        )
    if not 1 <= form.patient.birth_rank <= 9:
        outcome.refuse("Rang de naissance : de 1 à 9 (jumeaux : 1 et 2).")
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
    assert nir is not None and form.patient.birth_date is not None
    professional = context.professional
    prescriber = None
    if professional.role == Role.NURSE:
        # The teleconsulting doctor goes in the prescriber field of the nurse's act.
        doctor = await db.get_one(User, context.call.created_by_id)
        prescriber = doctor.rpps
    row = BillingRecord(
        call_id=context.call.id,
        professional_id=professional.id,
        created_by_id=user.id,
        patient_id=context.view.patient.id,
        act_date=context.situation.act_date,
        acts=[
            {"code": a.code, "amount_cents": a.amount_cents, "label": a.label} for a in outcome.acts
        ],
        total_cents=outcome.total_cents,
        currency="EUR",
        patient_nir=nir,
        patient_birth_date=form.patient.birth_date,
        birth_rank=form.patient.birth_rank,
        insurance_scheme=form.patient.scheme,
        insurance_fund=form.patient.fund,
        pathway=form.pathway,
        exemption=form.exemption,
        professional_role=professional.role,
        professional_rpps=professional.rpps,
        professional_am_number=context.profile.am_number if context.profile else None,
        prescriber_rpps=prescriber,
        teleconsultation=True,
        warnings=outcome.warnings,
        created_at=services.clock.now(),
    )
    db.add(row)
    await db.flush()
    audit.record(
        db,
        services.clock,
        "billing.recorded",
        actor_id=user.id,
        ip=ip,
        resource_type="call",
        resource_id=context.call.id,
        details={"record_id": row.id, "acts": [a.code for a in outcome.acts]},
    )
    try:
        await db.commit()
    except IntegrityError as exc:  # unique (call, professional): a concurrent POST won
        await db.rollback()
        raise Conflict("Cette téléconsultation est déjà cotée pour ce professionnel.") from exc
    return row


async def professionals_visible_to(db: AsyncSession, user: User) -> list[str]:
    if user.role in (Role.DOCTOR, Role.NURSE):
        return [user.id]
    if user.role == Role.SECRETARY:
        return list(
            await db.scalars(
                select(SecretaryAssignment.doctor_id).where(
                    SecretaryAssignment.secretary_id == user.id
                )
            )
        )
    raise Forbidden("L'export de facturation est réservé aux professionnels.")


async def records_between(
    db: AsyncSession, user: User, start: date, end: date
) -> list[tuple[BillingRecord, User, export.Patient]]:
    """Records of the caller's acts (a secretary: their doctors'), with professional and
    patient, oldest first."""
    if end < start:
        raise InvalidInput("to : la fin de la période précède son début")
    if (end - start).days > 366:
        raise InvalidInput("Période trop longue : un an au plus par export.")
    ids = await professionals_visible_to(db, user)
    rows = (
        await db.execute(
            select(BillingRecord)
            .where(
                BillingRecord.professional_id.in_(ids),
                BillingRecord.act_date >= start,
                BillingRecord.act_date <= end,
            )
            .order_by(BillingRecord.act_date, BillingRecord.created_at)
        )
    ).scalars()
    result = []
    for row in rows:
        result.append(
            (
                row,
                await db.get_one(User, row.professional_id),
                export.patient_of(
                    row, await db.get(User, row.patient_id) if row.patient_id else None
                ),
            )
        )
    return result


async def get_profile(db: AsyncSession, user: User) -> BillingProfile | None:
    return await db.get(BillingProfile, user.id)


async def put_profile(
    db: AsyncSession,
    services: Services,
    user: User,
    *,
    am_number: str | None,
    practice_postcode: str | None,
    yearly_acts: int | None,
    overseas: bool,
) -> BillingProfile:
    if user.role not in (Role.DOCTOR, Role.NURSE):
        raise Forbidden("Le profil de facturation concerne les médecins et infirmiers.")
    profile = await db.get(BillingProfile, user.id)
    if profile is None:
        profile = BillingProfile(user_id=user.id, updated_at=services.clock.now())
        db.add(profile)
    profile.am_number = am_number
    profile.practice_postcode = practice_postcode
    profile.yearly_acts = yearly_acts
    profile.overseas = overseas
    profile.updated_at = services.clock.now()
    await db.commit()
    return profile


async def cancel_record(
    db: AsyncSession, services: Services, user: User, record_id: str, *, ip: str | None
) -> BillingRecord:
    """Withdraw a coding made in error, so the act can be coded again. The audit log keeps what
    it said; a record already imported into the billing software must be corrected there too."""
    # Who may withdraw codings at all is decided first: a patient asking about an existing
    # record and about an unknown one gets the same 403 (was: 403 for one, 404 for the other).
    visible = await professionals_visible_to(db, user)
    row = await db.get(BillingRecord, record_id)
    if row is None or row.professional_id not in visible:
        raise NotFound("Cotation introuvable.")
    audit.record(
        db,
        services.clock,
        "billing.cancelled",
        actor_id=user.id,
        ip=ip,
        resource_type="call" if row.call_id else "expertise_request",
        resource_id=row.call_id or row.expertise_request_id,
        details={
            "record_id": row.id,
            "acts": [a["code"] for a in row.acts],
            "total_cents": row.total_cents,
            "act_date": row.act_date.isoformat(),
        },
    )
    await db.delete(row)
    await db.commit()
    return row
