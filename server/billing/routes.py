"""HTTP routes for billing: the proposal for a call, the validated record, the export, and the
professional's billing profile."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.accounts.auth import require_user
from server.billing import export, rules, service
from server.clock import PARIS
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body, parse_query
from server.models import Role, User

routes = web.RouteTableDef()


class ProposalQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pathway: rules.Pathway | None = None
    report_sent: bool = False
    place: rules.Place | None = None
    has_treating_doctor: bool | None = None


class ActBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=8)
    amount_cents: int | None = Field(default=None, ge=0, le=100_000)


class PatientBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nir: str | None = Field(default=None, max_length=30)
    birth_date: date | None = None
    birth_rank: int = 1
    scheme: str | None = Field(default=None, max_length=10)
    fund: str | None = Field(default=None, max_length=10)
    postcode: str | None = Field(default=None, max_length=5)


class RecordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    acts: list[ActBody] = Field(max_length=10)
    patient: PatientBody = Field(default_factory=PatientBody)
    pathway: rules.Pathway | None = None
    report_sent: bool = False
    has_treating_doctor: bool | None = None
    place: rules.Place | None = None
    exemption: str | None = Field(default=None, max_length=20)


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    format: Literal["json", "csv"] = "json"


class ProfileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    am_number: str | None = Field(default=None, max_length=9)
    practice_postcode: str | None = None
    yearly_acts: int | None = Field(default=None, ge=1, le=100_000)
    overseas: bool = False

    @field_validator("am_number")
    @classmethod
    def _am(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"\d{9}", value.replace(" ", "")):
            raise ValueError("numéro Assurance Maladie : 9 chiffres")
        return value.replace(" ", "") if value else None

    @field_validator("practice_postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"\d{5}", value):
            raise ValueError("code postal : 5 chiffres")
        return value or None


def _form(data: RecordBody | ProposalQuery) -> service.BillingForm:
    patient = service.PatientForm()
    exemption = None
    if isinstance(data, RecordBody):
        patient = service.PatientForm(
            nir=data.patient.nir,
            birth_date=data.patient.birth_date,
            birth_rank=data.patient.birth_rank,
            scheme=data.patient.scheme,
            fund=data.patient.fund,
            postcode=data.patient.postcode,
        )
        exemption = data.exemption
    return service.BillingForm(
        pathway=data.pathway,
        report_sent=data.report_sent,
        has_treating_doctor=data.has_treating_doctor,
        place=data.place,
        exemption=exemption,
        patient=patient,
    )


@routes.get("/api/calls/{id}/billing")
@documented(
    "The proposed coding of a call: acts, amounts at its date, warnings", query=ProposalQuery
)
async def proposal(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        query = parse_query(request, ProposalQuery)
        context = await service.context_of(
            db, services, user, request.match_info["id"], _form(query)
        )
        existing = None
        if context.existing is not None:
            patient = context.view.patient
            existing = export.record_json(
                context.existing, context.professional, export.patient_of(context.existing, patient)
            )
    outcome = rules.propose(context.situation)
    s = context.situation
    professional = context.professional
    body: dict[str, Any] = {
        "call_id": context.call.id,
        "act_date": s.act_date.isoformat(),
        "professional": {
            "id": professional.id,
            "role": professional.role,
            "specialty": professional.specialty,
            "sector": professional.sector,
            "display_name": professional.display_name,
        },
        "patient": {
            "id": context.view.patient.id,
            "first_name": context.view.patient.first_name,
            "last_name": context.view.patient.last_name,
            "birth_date": s.patient_birth_date.isoformat() if s.patient_birth_date else None,
        },
        "video_both_ways_seconds": s.video_seconds,
        "assistance": context.call.assistance,
        "place": s.place,
        "acts": [
            {"code": a.code, "amount_cents": a.amount_cents, "label": a.label} for a in outcome.acts
        ],
        "total_cents": outcome.total_cents,
        "currency": "EUR",
        "warnings": outcome.warnings,
        "record": existing,
    }
    return web.json_response(body)


@routes.post("/api/calls/{id}/billing")
@documented(
    "Validate and keep a call's coding; 422 lists each broken rule in errors[]", body=RecordBody
)
async def record(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, RecordBody)
        row = await service.record(
            db,
            services,
            user,
            request.match_info["id"],
            [rules.ChosenAct(a.code, a.amount_cents) for a in data.acts],
            _form(data),
            ip=client_ip(request),
        )
        body = export.record_json(
            row,
            await db.get_one(User, row.professional_id),
            export.patient_of(row, await db.get(User, row.patient_id) if row.patient_id else None),
        )
    return web.json_response(body, status=201)


@routes.get("/api/billing/records")
@documented(
    "Export billing records for a date range (?from=&to=&format=json|csv)", query=ExportQuery
)
async def records(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    query = parse_query(request, ExportQuery)
    today = services.clock.now().astimezone(PARIS).date()
    end = query.to or today
    start = query.from_ or end - timedelta(days=30)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        rows = await service.records_between(db, user, start, end)
    if query.format == "csv":
        return web.Response(
            body=export.to_csv(rows).encode("utf-8-sig"),  # the BOM lets spreadsheets read UTF-8
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="facturation-{start}-{end}.csv"',
                "Cache-Control": "no-store",
            },
        )
    return web.json_response(
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "items": [export.record_json(r, p, q) for r, p, q in rows],
        },
        headers={"Cache-Control": "no-store"},
    )


@routes.delete("/api/billing/records/{id}")
@documented("Withdraw a coding made in error (kept in the audit log), so it can be redone")
async def cancel_record(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        await service.cancel_record(
            db, services, user, request.match_info["id"], ip=client_ip(request)
        )
    return web.Response(status=204)


def _profile_json(profile: Any) -> dict[str, Any]:
    return {
        "am_number": profile.am_number if profile else None,
        "practice_postcode": profile.practice_postcode if profile else None,
        "yearly_acts": profile.yearly_acts if profile else None,
        "overseas": bool(profile.overseas) if profile else False,
    }


@routes.get("/api/me/billing-profile")
@documented("Professional: Assurance Maladie number, practice postcode, yearly acts")
async def get_profile(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, Role.DOCTOR, Role.NURSE)
        profile = await service.get_profile(db, user)
    return web.json_response(_profile_json(profile))


@routes.put("/api/me/billing-profile")
@documented("Professional: set the billing profile", body=ProfileBody)
async def put_profile(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, ProfileBody)
        profile = await service.put_profile(
            db,
            services,
            user,
            am_number=data.am_number,
            practice_postcode=data.practice_postcode,
            yearly_acts=data.yearly_acts,
            overseas=data.overseas,
        )
        body = _profile_json(profile)
    return web.json_response(body)
