"""HTTP routes of tele-expertise (api.md "Tele-expertise"): lines, requests, templates.

Patients, administrators and professionals outside a request get 404 on every route: nothing
tells them that a line's requests or a request exist."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from server.accounts.auth import require_user
from server.billing import export, rules
from server.billing.nir import NirError, parse_nir
from server.conversations import announce
from server.conversations import service as conversations
from server.expertise import billing as expertise_billing
from server.expertise import lines as line_rules
from server.expertise import requests as request_rules
from server.expertise import templates as template_rules
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body, parse_query
from server.http.serialize import iso, person_json
from server.models import ExpertiseLine, ExpertiseRequest, User
from server.values import PersonName

routes = web.RouteTableDef()

ShortText = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: Literal["text", "yes_no", "choice"] = "text"
    choices: list[ShortText] = Field(default_factory=list, max_length=20)
    required: bool = False


class Perimeter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    postcodes: list[str] = Field(default_factory=list, max_length=200)

    @field_validator("postcodes")
    @classmethod
    def _postcodes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not re.fullmatch(r"\d{2,5}|2[AB]\d{0,3}", code):
                raise ValueError("codes postaux ou débuts de code postal (« 35 », « 56100 »)")
        return value


class LineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]
    specialty: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    description: str = Field(default="", max_length=4000)
    instructions: str = Field(default="", max_length=8000)
    accepts: list[ShortText] = Field(default_factory=list, max_length=50)
    excludes: list[ShortText] = Field(default_factory=list, max_length=50)
    perimeter: Perimeter | None = None
    questionnaire: list[Question] = Field(default_factory=list, max_length=30)
    delay_hours: int = Field(default=72, ge=1, le=720)
    members: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=line_rules.MAX_MEMBERS
    )

    def input(self) -> line_rules.LineInput:
        keys = [q.key for q in self.questionnaire]
        if len(set(keys)) != len(keys):
            raise_invalid("questionnaire : chaque question a sa propre clé (key)")
        return line_rules.LineInput(
            name=self.name,
            specialty=self.specialty,
            description=self.description.strip(),
            instructions=self.instructions.strip(),
            accepts=tuple(self.accepts),
            excludes=tuple(self.excludes),
            perimeter=tuple(self.perimeter.postcodes) if self.perimeter else (),
            questionnaire=tuple(q.model_dump() for q in self.questionnaire),
            delay_hours=self.delay_hours,
            members=tuple(self.members),
        )


def raise_invalid(detail: str) -> None:
    from server.errors import InvalidInput

    raise InvalidInput(detail)


class RotaBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekdays: dict[str, str | None]


class DirectoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, max_length=100)
    specialty: str | None = Field(default=None, max_length=60)


class PatientBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: PersonName
    last_name: PersonName
    birth_date: date
    nir: str | None = Field(default=None, max_length=30)

    @field_validator("nir")
    @classmethod
    def _nir(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return parse_nir(value).full
        except NirError as exc:
            raise ValueError(str(exc)) from exc


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: str | None = Field(default=None, max_length=64)
    expert_id: str | None = Field(default=None, max_length=64)
    patient: PatientBody
    consent: bool = False
    answers: dict[str, Any] = Field(default_factory=dict)
    question: Annotated[str, StringConstraints(min_length=1, max_length=8000)]
    attachment_ids: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=10
    )
    mode: Literal["async", "sync"] = "async"
    client_id: str | None = Field(default=None, min_length=1, max_length=64)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    box: Literal["sent", "received"] = "received"
    status: Literal["open", "claimed", "answered", "rejected", "closed", "late", "mine"] | None = (
        None
    )


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Annotated[str, StringConstraints(min_length=1, max_length=8000)]
    attachment_ids: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=10
    )


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class ParticipantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(max_length=64)


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=8000)]
    scope: Literal["line", "personal"] = "personal"
    line_id: str | None = Field(default=None, max_length=64)


async def _people(db: Any, ids: list[str]) -> list[dict[str, Any]]:
    found = []
    for user_id in ids:
        user = await db.get(User, user_id)
        if user is not None:
            found.append(person_json(user))
    return found


async def line_json(db: Any, line: ExpertiseLine, viewer: User) -> dict[str, Any]:
    members = await line_rules.member_ids(db, line.id)
    manager = await db.get(User, line.manager_id)
    body: dict[str, Any] = {
        "id": line.id,
        "name": line.name,
        "specialty": line.specialty,
        "description": line.description,
        "instructions": line.instructions,
        "accepts": line.accepts,
        "excludes": line.excludes,
        "perimeter": {"postcodes": line.perimeter},
        "questionnaire": line.questionnaire,
        "delay_hours": line.delay_hours,
        "manager": person_json(manager) if manager else None,
        "members": await _people(db, members),
        "is_member": viewer.id in members,
        "is_manager": viewer.id == line.manager_id,
    }
    if viewer.id in members:
        body["rota"] = await line_rules.rota(db, line.id)
    return body


async def request_json(db: Any, request: ExpertiseRequest, now: datetime) -> dict[str, Any]:
    line = await db.get(ExpertiseLine, request.line_id) if request.line_id else None
    people = {
        key: (person_json(user) if user else None)
        for key, user_id in (
            ("requester", request.requester_id),
            ("expert", request.expert_id),
            ("claimed_by", request.claimed_by_id),
            ("answered_by", request.answered_by_id),
            ("rejected_by", request.rejected_by_id),
        )
        for user in [await db.get(User, user_id) if user_id else None]
    }
    open_now = request.status in request_rules.OPEN_STATES
    return {
        "id": request.id,
        "line": {"id": line.id, "name": line.name, "specialty": line.specialty} if line else None,
        **people,
        "patient": {
            "first_name": request.patient_first_name,
            "last_name": request.patient_last_name,
            "birth_date": request.patient_birth_date.isoformat(),
            "nir": request.patient_nir,
        },
        "consent_at": iso(request.consent_at),
        "answers": request.answers,
        "question": request.question,
        "mode": request.mode,
        "status": request.status,
        "created_at": iso(request.created_at),
        "due_at": iso(request.due_at),
        "age_hours": round((now - request.created_at).total_seconds() / 3600, 1),
        "late": open_now and now > request.due_at,
        "reject_reason": request.reject_reason,
        "conversation_id": request.conversation_id,
        "report_document_id": request.report_document_id,
    }


@routes.post("/api/expertise/lines")
@documented("Professional: create an advice line (the creator manages it)", body=LineBody)
async def create_line(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        line_rules.require_professional(user)
        data = (await parse_body(request, LineBody)).input()
        line = await line_rules.create_line(db, services, user, data, ip=client_ip(request))
        await db.commit()
        body = await line_json(db, line, user)
    return web.json_response(body, status=201)


@routes.get("/api/expertise/lines")
@documented("The directory of advice lines (?q=&specialty=)", query=DirectoryQuery)
async def directory(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        line_rules.require_professional(user)
        query = parse_query(request, DirectoryQuery)
        found = await line_rules.directory(db, user, query.q, query.specialty)
        items = [await line_json(db, line, user) for line in found]
    return web.json_response({"items": items})


@routes.get("/api/expertise/lines/{id}")
@documented("One advice line: instructions, questionnaire, delay, members")
async def show_line(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        line = await line_rules.find_line(db, user, request.match_info["id"])
        body = await line_json(db, line, user)
    return web.json_response(body)


@routes.put("/api/expertise/lines/{id}")
@documented("The line's manager: change the line and its members", body=LineBody)
async def update_line(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        line_rules.require_professional(user)
        data = (await parse_body(request, LineBody)).input()
        line = await line_rules.update_line(
            db, services, user, request.match_info["id"], data, ip=client_ip(request)
        )
        await db.commit()
        body = await line_json(db, line, user)
    return web.json_response(body)


@routes.get("/api/expertise/lines/{id}/figures")
@documented("A line's members: requests, answers, rejections and median delay, per month")
async def line_figures(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        months = await line_rules.figures(db, user, request.match_info["id"], services.clock.now())
    return web.json_response({"months": months})


@routes.put("/api/expertise/lines/{id}/rota")
@documented("The line's manager: the doctor of the day per weekday", body=RotaBody)
async def set_rota(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        line_rules.require_professional(user)
        data = await parse_body(request, RotaBody)
        days = await line_rules.set_rota(
            db, services, user, request.match_info["id"], data.weekdays, ip=client_ip(request)
        )
        await db.commit()
    return web.json_response({"weekdays": days})


@routes.post("/api/expertise/requests")
@documented(
    "Professional: ask a line or an expert about a patient, with the patient's consent",
    body=RequestBody,
)
async def create_request(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        line_rules.require_professional(user)
        data = await parse_body(request, RequestBody)
        created = await request_rules.create_request(
            db,
            services,
            user,
            request_rules.NewRequest(
                line_id=data.line_id,
                expert_id=data.expert_id,
                patient=request_rules.PatientIdentity(
                    data.patient.first_name,
                    data.patient.last_name,
                    data.patient.birth_date,
                    data.patient.nir,
                ),
                consent=data.consent,
                answers=data.answers,
                question=data.question,
                attachment_ids=tuple(data.attachment_ids),
                mode=data.mode,
                client_id=data.client_id,
            ),
            ip=client_ip(request),
        )
        await db.commit()
        body = await request_json(db, created.request, services.clock.now())
        message, members = await announce.prepare(db, created.posted)
    await announce.announce(services, created.posted, message, members)
    services.bell.ring()  # the doctor of the day's notice
    return web.json_response(body, status=201 if created.created else 200)


@routes.get("/api/expertise/requests")
@documented(
    "The requests I sent, or those of my lines (?box=sent|received&status=)", query=ListQuery
)
async def list_requests(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        line_rules.require_professional(user)
        query = parse_query(request, ListQuery)
        now = services.clock.now()
        found = await request_rules.list_requests(db, user, query.box, query.status, now)
        items = [await request_json(db, r, now) for r in found]
    return web.json_response({"items": items})


@routes.get("/api/expertise/requests/{id}")
@documented("One request: patient, questionnaire, status, delay")
async def show_request(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        found = await request_rules.visible_request(db, user, request.match_info["id"])
        body = await request_json(db, found, services.clock.now())
    return web.json_response(body)


async def _after(request: web.Request, found: ExpertiseRequest, posted: list[Any]) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        body = await request_json(db, found, services.clock.now())
        prepared = [(p, *(await announce.prepare(db, p))) for p in posted]
    for p, message, members in prepared:
        await announce.announce(services, p, message, members)
    return web.json_response(body)


@routes.post("/api/expertise/requests/{id}/claim")
@documented("A member of the line takes the request")
async def claim(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        found, posted = await request_rules.claim(
            db, services, user, request.match_info["id"], ip=client_ip(request)
        )
        await db.commit()
    return await _after(request, found, [posted] if posted else [])


@routes.post("/api/expertise/requests/{id}/answer")
@documented("An expert answers; the report PDF is made and posted in the thread", body=AnswerBody)
async def answer(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, AnswerBody)
        found, posted = await request_rules.answer(
            db,
            services,
            user,
            request.match_info["id"],
            data.body,
            tuple(data.attachment_ids),
            ip=client_ip(request),
        )
        report = await request_rules.post_report(db, services, user, found, ip=client_ip(request))
        await db.commit()
    return await _after(request, found, [posted, report])


@routes.post("/api/expertise/requests/{id}/reject")
@documented("An expert refuses the request, with a reason (never billed)", body=RejectBody)
async def reject(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, RejectBody)
        found, posted = await request_rules.reject(
            db, services, user, request.match_info["id"], data.reason, ip=client_ip(request)
        )
        await db.commit()
    return await _after(request, found, [posted])


@routes.post("/api/expertise/requests/{id}/close")
@documented("The requester or an expert closes an answered request")
async def close(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        found = await request_rules.close(
            db, services, user, request.match_info["id"], ip=client_ip(request)
        )
        await db.commit()
    return await _after(request, found, [])


@routes.post("/api/expertise/requests/{id}/participants")
@documented("Add a colleague or a secretary to the request's thread", body=ParticipantBody)
async def add_participant(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        found = await request_rules.visible_request(db, user, request.match_info["id"])
        data = await parse_body(request, ParticipantBody)
        added = await conversations.add_participant(
            db, services, user, found.conversation_id, data.user_id, ip=client_ip(request)
        )
        await db.commit()
    return web.json_response(person_json(added))


class ExpertiseActBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(min_length=1, max_length=10)]
    amount_cents: int | None = Field(default=None, ge=0, le=1_000_000)


class ExpertisePatientBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nir: str | None = Field(default=None, max_length=30)
    birth_rank: int = Field(default=1, ge=1, le=9)


class ExpertiseBillingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    acts: list[ExpertiseActBody] = Field(min_length=1, max_length=5)
    patient: ExpertisePatientBody = Field(default_factory=ExpertisePatientBody)


@routes.get("/api/expertise/requests/{id}/billing")
@documented("The requester's RQD or the answering expert's TE2, proposed and rule-checked")
async def billing_proposal(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        context = await expertise_billing.context_of(db, user, request.match_info["id"])
        outcome = expertise_billing.propose(context)
        existing = None
        if context.existing is not None:
            existing = export.record_json(
                context.existing, user, export.patient_of(context.existing, None)
            )
    return web.json_response(
        {
            "request_id": context.request.id,
            "role": context.role,
            "act_date": context.expertise.act_date.isoformat(),
            "acts": [
                {"code": a.code, "amount_cents": a.amount_cents, "label": a.label}
                for a in outcome.acts
            ],
            "total_cents": outcome.total_cents,
            "errors": [{"code": e.code, "detail": e.detail} for e in outcome.errors],
            "warnings": outcome.warnings,
            "patient_nir": context.request.patient_nir,
            "record": existing,
        }
    )


@routes.post("/api/expertise/requests/{id}/billing")
@documented(
    "Record the coding of a tele-expertise (422 listing each broken rule)",
    body=ExpertiseBillingBody,
)
async def billing_record(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, ExpertiseBillingBody)
        row = await expertise_billing.record(
            db,
            services,
            user,
            request.match_info["id"],
            [rules.ChosenAct(a.code.strip().upper(), a.amount_cents) for a in data.acts],
            nir=data.patient.nir,
            birth_rank=data.patient.birth_rank,
            ip=client_ip(request),
        )
        await db.commit()
        body = export.record_json(row, user, export.patient_of(row, None))
    return web.json_response(body, status=201)


@routes.get("/api/expertise/templates")
@documented("My answer templates and my lines'")
async def list_templates(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        found = await template_rules.list_templates(db, user)
    return web.json_response(
        {
            "items": [
                {
                    "id": t.id,
                    "title": t.title,
                    "body": t.body,
                    "scope": t.scope,
                    "line_id": t.line_id,
                    "owner_id": t.owner_id,
                }
                for t in found
            ]
        }
    )


@routes.post("/api/expertise/templates")
@documented("Add an answer template (personal, or the line's)", body=TemplateBody)
async def create_template(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        data = await parse_body(request, TemplateBody)
        template = await template_rules.create_template(
            db,
            services,
            user,
            title=data.title,
            body=data.body,
            scope=data.scope,
            line_id=data.line_id,
        )
        await db.commit()
        body = {
            "id": template.id,
            "title": template.title,
            "body": template.body,
            "scope": template.scope,
            "line_id": template.line_id,
            "owner_id": template.owner_id,
        }
    return web.json_response(body, status=201)
