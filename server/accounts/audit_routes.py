"""The audit log, for the install's administrator (beside the other admin views of accounts)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from server import audit
from server.accounts.auth import require_user
from server.audit import chain
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_query
from server.http.serialize import iso
from server.models import AuditEvent, Role

routes = web.RouteTableDef()


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=1000)
    before: datetime | None = None
    actor_id: str | None = Field(default=None, max_length=32)
    resource_id: str | None = Field(default=None, max_length=32)
    action: str | None = Field(default=None, max_length=60)


@routes.get("/api/admin/audit")
@documented(
    "Audit events, newest first (admins); filters: actor_id, resource_id, action, before",
    query=AuditQuery,
)
async def list_events(request: web.Request) -> web.Response:
    services = services_of(request)
    query = parse_query(request, AuditQuery)
    async with services.sessionmaker() as db:
        admin = await require_user(request, db, Role.ADMIN)
        stmt = select(AuditEvent).order_by(AuditEvent.at.desc()).limit(query.limit)
        if query.before:
            stmt = stmt.where(AuditEvent.at < query.before)
        if query.actor_id:
            stmt = stmt.where(AuditEvent.actor_id == query.actor_id)
        if query.resource_id:
            stmt = stmt.where(AuditEvent.resource_id == query.resource_id)
        if query.action:
            stmt = stmt.where(AuditEvent.action == query.action)
        events = list(await db.scalars(stmt))
        # Reading the audit log is itself an access worth recording.
        audit.record(db, services.clock, "audit.read", actor_id=admin.id, ip=client_ip(request))
        await db.commit()
    return web.json_response(
        {
            "items": [
                {
                    "id": e.id,
                    "at": iso(e.at),
                    "actor_id": e.actor_id,
                    "action": e.action,
                    "resource_type": e.resource_type,
                    "resource_id": e.resource_id,
                    "ip": e.ip,
                    "details": e.details,
                    "seq": e.seq,
                    # False: the row no longer holds what was written (edited in the database);
                    # ``teleconsult audit verify`` also checks the links between rows.
                    "intact": chain.intact(e),
                }
                for e in events
            ]
        }
    )
