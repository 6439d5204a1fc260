"""The application factory: everything the server needs comes in through ``Settings``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.utils import parseaddr

import aiohttp
from aiohttp import web

from server import limits
from server.accounts.admin_routes import routes as admin_routes
from server.accounts.audit_routes import routes as audit_routes
from server.accounts.auth import idempotency_owner
from server.accounts.notification_routes import routes as notification_routes
from server.accounts.refusals import refused_access_middleware
from server.accounts.reset_routes import routes as reset_routes
from server.accounts.routes import routes as account_routes
from server.accounts.verify_routes import routes as verify_routes
from server.audit.verify import run_head_reporter
from server.billing.routes import routes as billing_routes
from server.calls.keys import SFU_CALLS
from server.calls.metrics import routes as metrics_routes
from server.calls.routes import routes as call_routes
from server.clock import Clock, SystemClock
from server.contacts.routes import routes as contact_routes
from server.conversations.group_commit import MessageWriter
from server.conversations.keys import MESSAGE_WRITER
from server.conversations.routes import routes as conversation_routes
from server.conversations.settings_routes import routes as messaging_settings_routes
from server.db import create_engine, create_sessionmaker, migrate
from server.documents.routes import routes as document_routes
from server.expertise.reminders import run_reminders
from server.expertise.routes import routes as expertise_routes
from server.filecrypt import KeyRing
from server.http.access_log import access_log_middleware
from server.http.auth import csrf_middleware
from server.http.completion import run_to_completion_middleware
from server.http.headers import security_headers_middleware
from server.http.idempotency import IDEMPOTENCY_OWNER, idempotency_middleware
from server.http.keys import SERVICES
from server.http.problems import problem_middleware
from server.invitations.delivery import run_worker
from server.invitations.routes import routes as invitation_routes
from server.notify.loop import run_notifier
from server.outbound.push import WebPushSender
from server.outbound.senders import (
    EmailSender,
    HttpSmsSender,
    OutboxEmailSender,
    OutboxSmsSender,
    SmsSender,
    SmtpEmailSender,
)
from server.pages import WEB_DIR
from server.pages import routes as page_routes
from server.passwords import Passwords
from server.payment_providers import BuiltinProvider, PaymentProvider, StripeProvider
from server.payments.reminders import run_sweeper
from server.payments.routes import routes as payment_routes
from server.privacy.retention import run_retention
from server.privacy.routes import routes as privacy_routes
from server.ratelimit import MemoryCounters, RateLimiter, RedisCounters
from server.sealing import seal_plain_files
from server.services import Services
from server.settings import Settings
from server.storage import AttachmentStore
from signaling.call_events import CallSignaling
from signaling.events import SocketEvents
from signaling.flood import FloodGuard
from signaling.server import (
    SOCKET_SERVER,
    SocketPublisher,
    close_socket_server,
    create_socket_server,
    register_handlers,
)
from signaling.sessions import SocketSessions


@dataclass(frozen=True)
class Overrides:
    """What tests may swap: the clock, and the engine's PostgreSQL schema."""

    clock: Clock | None = None
    db_schema: str | None = None


def create_app(settings: Settings, overrides: Overrides | None = None) -> web.Application:
    overrides = overrides or Overrides()
    settings = settings.with_secret()
    # A malformed key, or one that does not open the files already sealed, stops the start with
    # a clear message (DataKeyError) rather than failing at the first download.
    store = AttachmentStore(
        settings.uploads_dir, settings.upload_max_bytes, KeyRing.parse(settings.data_key)
    )
    store.check_key()
    app = web.Application(
        middlewares=[
            run_to_completion_middleware,  # a request's transaction ends as written, always
            access_log_middleware,
            security_headers_middleware,  # outside the problem renderer: errors get them too
            problem_middleware,
            refused_access_middleware,  # inside the renderer: it sees the refusal itself
            csrf_middleware,
            idempotency_middleware,  # after CSRF: a cross-site POST is refused, not replayed
        ],
        client_max_size=limits.JSON_BODY_MAX_BYTES,
    )
    sio = create_socket_server(settings)
    sessions = SocketSessions(sio, lambda: app[SERVICES], settings.redis_url)
    events = SocketEvents(sio, sessions, FloodGuard())
    app.middlewares.append(events.middleware())
    app[IDEMPOTENCY_OWNER] = idempotency_owner
    register_handlers(sio, lambda: app[SERVICES], events)
    sfu = CallSignaling(sio, lambda: app[SERVICES], events, redis_url=settings.redis_url).sfu
    app[SFU_CALLS] = sfu
    sio.attach(app)
    app[SOCKET_SERVER] = sio

    async def close_sockets(_: web.Application) -> None:
        # Open websockets would otherwise hold the shutdown until its timeout.
        await close_socket_server(sio)
        await sfu.close()
        await sessions.close()

    app.on_shutdown.append(close_sockets)
    app.cleanup_ctx.append(
        _services_context(settings, overrides, SocketPublisher(sio, sessions), store)
    )
    for table in (
        account_routes,
        admin_routes,
        audit_routes,
        billing_routes,
        call_routes,
        invitation_routes,
        contact_routes,
        conversation_routes,
        document_routes,
        payment_routes,
        messaging_settings_routes,
        metrics_routes,
        notification_routes,
        reset_routes,
        verify_routes,
        privacy_routes,
        expertise_routes,
        page_routes,
    ):
        app.router.add_routes(table)
    app.router.add_static("/static/", WEB_DIR / "static", append_version=False)
    return app


def push_contact(settings: Settings) -> str:
    """The VAPID ``sub`` claim: whom a push service writes to about this server's pushes."""
    address = parseaddr(settings.mail_from)[1] or "no-reply@teleconsult.localhost"
    return f"mailto:{address}"


def payment_provider(settings: Settings, http: aiohttp.ClientSession) -> PaymentProvider:
    if settings.payment_provider == "stripe":
        assert settings.stripe_secret_key and settings.stripe_webhook_secret
        return StripeProvider(
            settings.stripe_secret_key,
            settings.stripe_webhook_secret,
            settings.stripe_api_base,
            http,
        )
    return BuiltinProvider()


def _services_context(
    settings: Settings, overrides: Overrides, events: SocketPublisher, store: AttachmentStore
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.effective_database_url, schema=overrides.db_schema)
        http = aiohttp.ClientSession()
        worker: asyncio.Task[None] | None = None
        writer: MessageWriter | None = None
        sweeper: asyncio.Task[None] | None = None
        upload_sweeper: asyncio.Task[None] | None = None
        notifier: asyncio.Task[None] | None = None
        head_reporter: asyncio.Task[None] | None = None
        expertise_reminders: asyncio.Task[None] | None = None
        limiter: RateLimiter | None = None
        try:
            await migrate(engine)
            clock = overrides.clock or SystemClock()
            # With Redis, every process counts in the same place: N processes must not give an
            # attacker N times the attempts.
            limiter = RateLimiter(
                clock,
                RedisCounters(settings.redis_url, settings.secret_key)
                if settings.redis_url
                else MemoryCounters(),
            )
            email: EmailSender
            sms: SmsSender
            if settings.smtp_url:
                email = SmtpEmailSender(settings.smtp_url, settings.mail_from)
            else:
                email = OutboxEmailSender(settings.outbox_dir, settings.mail_from)
            if settings.sms_url:
                sms = HttpSmsSender(settings.sms_url, http)
            else:
                sms = OutboxSmsSender(settings.outbox_dir)
            services = Services(
                settings=settings,
                clock=clock,
                passwords=Passwords(settings.password_hashing),
                limiter=limiter,
                email=email,
                sms=sms,
                sessionmaker=create_sessionmaker(engine),
                events=events,
                attachments=store,
                payments=payment_provider(settings, http),
                push=WebPushSender(settings.vapid_private_key, push_contact(settings), http),
            )
            app[SERVICES] = services
            await seal_plain_files(services)
            writer = MessageWriter(services.sessionmaker, clock)
            writer.start()
            app[MESSAGE_WRITER] = writer
            if settings.delivery_worker:
                worker = asyncio.create_task(run_worker(services), name="delivery-worker")
                sweeper = asyncio.create_task(run_sweeper(services), name="payment-sweeper")
                notifier = asyncio.create_task(run_notifier(services), name="notifier")
                upload_sweeper = asyncio.create_task(run_retention(services), name="retention")
                expertise_reminders = asyncio.create_task(
                    run_reminders(services), name="expertise-reminders"
                )
                head_reporter = asyncio.create_task(
                    run_head_reporter(services.sessionmaker), name="audit-head-reporter"
                )
            yield
        finally:
            for task in (
                worker,
                sweeper,
                upload_sweeper,
                notifier,
                head_reporter,
                expertise_reminders,
            ):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if writer is not None:
                await writer.close()
            await http.close()
            if limiter is not None:
                await limiter.close()
            await engine.dispose()

    return context
