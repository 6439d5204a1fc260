"""The ``teleconsult`` command: serve, migrate, create-user, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time

from aiohttp import web
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from server import audit
from server.accounts.service import NewUser, attach_secretary, create_user
from server.app import create_app
from server.clock import PARIS, SystemClock
from server.db import create_engine, create_sessionmaker, migrate
from server.errors import AppError
from server.events import NoEvents
from server.filecrypt import DataKeyError, KeyRing
from server.models import Role, User
from server.outbound.push import NoPush
from server.outbound.senders import OutboxEmailSender, OutboxSmsSender
from server.passwords import Passwords
from server.payment_providers import BuiltinProvider
from server.ratelimit import RateLimiter
from server.services import Services
from server.settings import Settings, SettingsError
from server.storage import AttachmentStore
from server.values import Email, Password, Rpps

log = logging.getLogger("teleconsult")
SHUTDOWN_TIMEOUT = 10


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


def _services(settings: Settings) -> tuple[Services, object]:
    engine = create_engine(settings.effective_database_url)
    clock = SystemClock()
    return (
        Services(
            settings=settings,
            clock=clock,
            passwords=Passwords(settings.password_hashing),
            limiter=RateLimiter(clock),
            email=OutboxEmailSender(settings.outbox_dir, settings.mail_from),
            sms=OutboxSmsSender(settings.outbox_dir),
            sessionmaker=create_sessionmaker(engine),
            events=NoEvents(),
            attachments=AttachmentStore(
                settings.uploads_dir, settings.upload_max_bytes, KeyRing.parse(settings.data_key)
            ),
            payments=BuiltinProvider(),  # the CLI takes no payments
            push=NoPush(),
        ),
        engine,
    )


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings.effective_database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def _create_user(settings: Settings, args: argparse.Namespace) -> None:
    try:
        email = TypeAdapter(Email).validate_python(args.email)
        password = TypeAdapter(Password).validate_python(args.password)
        rpps = TypeAdapter(Rpps).validate_python(args.rpps) if args.rpps else None
    except ValidationError as exc:
        raise SystemExit(f"error: {exc.errors()[0]['msg']}") from exc
    services, engine = _services(settings)
    try:
        await migrate(engine)  # type: ignore[arg-type]
        async with services.sessionmaker() as db:
            user = await create_user(
                db,
                services,
                NewUser(
                    email=email,
                    password=password,
                    first_name=args.first_name,
                    last_name=args.last_name,
                    role=Role(args.role),
                    rpps=rpps,
                    specialty=args.specialty,
                    sector=args.sector,
                ),
                actor_id=None,
                ip="cli",
            )
            if args.doctor_email:
                doctor = await db.scalar(select(User).where(User.email == args.doctor_email))
                if doctor is None or doctor.role != Role.DOCTOR:
                    raise SystemExit(f"error: no doctor with email {args.doctor_email}")
                await attach_secretary(db, user, doctor)
            await db.commit()
        print(f"created {user.role} {user.email} (id {user.id})")
    except AppError as exc:
        raise SystemExit(f"error: {exc.detail}") from exc
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


def _date_arg(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=PARIS)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


async def _audit_verify(settings: Settings, since: datetime | None) -> int:
    """Exit status 0 if the chain holds, 1 with the first broken row named otherwise."""
    from server.audit.verify import verify

    engine = create_engine(settings.effective_database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            verdict = await verify(db, since)
    finally:
        await engine.dispose()
    head = f"head: seq={verdict.head_seq} hash={verdict.head_hash}"
    if verdict.ok:
        print(f"audit chain intact: {verdict.checked} rows checked; {head}")
        return 0
    where = f" (id {verdict.broken_id})" if verdict.broken_id else ""
    print(
        f"AUDIT CHAIN BROKEN at row {verdict.broken_seq}{where}: {verdict.problem}; "
        f"{verdict.checked} rows before it hold; {head}"
    )
    return 1


async def _approve_user(settings: Settings, email: str) -> None:
    """The administrator's approval, from the command line (an install's first doctors, before
    anyone has an admin account)."""
    services, engine = _services(settings)
    try:
        await migrate(engine)  # type: ignore[arg-type]
        async with services.sessionmaker() as db:
            user = await db.scalar(select(User).where(User.email == email.strip().lower()))
            if user is None:
                raise SystemExit(f"error: no account with email {email}")
            if user.approved_at is None:
                user.approved_at = services.clock.now()
                audit.record(
                    db,
                    services.clock,
                    "account.approved",
                    actor_id=None,
                    ip="cli",
                    resource_type="user",
                    resource_id=user.id,
                )
                await db.commit()
        print(f"approved {user.role} {user.email}")
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


DEMO_ACCOUNTS = (
    ("doctor", "claire.martin@demo.teleconsult.fr", "Claire", "Martin", "10003456786"),
    ("nurse", "julien.bernard@demo.teleconsult.fr", "Julien", "Bernard", "10100000008"),
    ("secretary", "sophie.petit@demo.teleconsult.fr", "Sophie", "Petit", None),
)


async def _demo(settings: Settings) -> None:
    """Seed a demo practice; re-running it gives the accounts fresh passwords."""
    services, engine = _services(settings)
    try:
        await migrate(engine)  # type: ignore[arg-type]
        lines = []
        async with services.sessionmaker() as db:
            doctor: User | None = None
            for role, email, first, last, rpps in DEMO_ACCOUNTS:
                password = secrets.token_urlsafe(9)
                user = await db.scalar(select(User).where(User.email == email))
                if user is None:
                    user = await create_user(
                        db,
                        services,
                        NewUser(
                            email=email,
                            password=password,
                            first_name=first,
                            last_name=last,
                            role=Role(role),
                            rpps=rpps,
                            practice_name="Maison de santé de démonstration",
                            practice_address="1 rue de la Santé, 75014 Paris",
                        ),
                        actor_id=None,
                        ip="cli",
                    )
                    if role == "secretary" and doctor is not None:
                        await attach_secretary(db, user, doctor)
                else:
                    user.password_hash = await services.passwords.hash(password)
                if role == "doctor":
                    doctor = user
                lines.append(f"  {role:<10} {email:<40} {password}")
            await db.commit()
        print("Demo practice ready. Sign in at", settings.effective_public_url + "/login")
        print("\n".join(lines))
    except AppError as exc:
        raise SystemExit(f"error: {exc.detail}") from exc
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


# The cycle collector's thresholds, for a server: (700, 10, 10) is Python's default.
GC_THRESHOLDS = (100_000, 50, 50)


def tune_collector() -> None:
    """Keep the cycle collector from pausing the server.

    What exists once the server is up (modules, mappers, compiled statements) lives as long as
    the process: frozen, it is left out of every pass. The thresholds are raised because under
    load Python's defaults run a pass over the young objects several times a second and a full
    pass every few seconds, and each one stops every request and socket of the process: with
    1,000 sockets connected, 10–35 ms for the young ones and 150–200 ms for a full pass
    (measured with bench/bench_messaging.py). These passes found almost nothing to free: what
    the server makes per request is freed by reference counting. With these thresholds, 500
    messages a second for 20 s ran with no pass over 5 ms; the young pass takes 50–80 ms only
    while 1,000 sockets connect at once, about once per 10 s of that."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _serve(settings: Settings) -> None:
    print(f"Téléconsult: open {settings.effective_public_url}/ in a browser", flush=True)
    if not settings.smtp_url or not settings.sms_url:
        print(f"Emails and SMS are written to {settings.outbox_dir.resolve()}/", flush=True)
    asyncio.run(_run_until_signal(settings))


async def _run_until_signal(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down in order (sockets, requests, resources).

    Our own loop instead of ``web.run_app``: the shutdown runs in the normal flow rather than
    under task cancellation, and a watchdog armed at the signal guarantees the process stops
    even if some task refuses to finish (seen: engine.io waiting on the send queue of a socket
    whose connection had died, and on websockets that browsers keep open after engine.io's
    CLOSE; ``close_socket_server`` now deals with both).
    """
    # access_log=None: our own middleware logs each request once, by route template; aiohttp's
    # logger would log it again, with the raw path (an invitation link's token).
    runner = web.AppRunner(create_app(settings), shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    tune_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()

    def force_exit() -> None:
        log.error("shutdown did not finish in %s s: forcing the exit", SHUTDOWN_TIMEOUT + 10)
        os._exit(1)

    watchdog = threading.Timer(SHUTDOWN_TIMEOUT + 10, force_exit)
    watchdog.daemon = True
    watchdog.start()
    await runner.cleanup()
    watchdog.cancel()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teleconsult", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (applies pending migrations first)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    sub.add_parser("migrate", help="apply pending database migrations")
    sub.add_parser(
        "rotate-data-key",
        help="seal every stored file's key with a new master key (see docs/data-at-rest.md)",
    )
    audit_cmd = sub.add_parser("audit", help="the audit log")
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", required=True)
    check = audit_sub.add_parser(
        "verify", help="check the audit log's hash chain; names the first broken row"
    )
    check.add_argument(
        "--from",
        dest="since",
        type=_date_arg,
        help="check from the first row written on or after this date (YYYY-MM-DD)",
    )
    create = sub.add_parser("create-user", help="create an account (any role)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--first-name", required=True)
    create.add_argument("--last-name", required=True)
    create.add_argument("--rpps")
    create.add_argument("--specialty")
    create.add_argument("--sector", choices=["1", "2", "optam"])
    create.add_argument("--doctor-email", help="secretaries: the doctor they work for")
    approve = sub.add_parser(
        "approve-user", help="approve a professional who signed up alone (as the admin would)"
    )
    approve.add_argument("--email", required=True)
    sub.add_parser("demo", help="seed a demo practice and print its sign-in details")
    media = sub.add_parser(
        "media", help="run a media node: the SFU of the app's calls, in a process of its own"
    )
    media.add_argument("--app", help="the app's address (default: TC_PUBLIC_URL)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    _configure_logging()
    try:
        settings = Settings.from_env()
        if args.command not in ("migrate", "audit"):
            settings = settings.with_secret()
    except (SettingsError, DataKeyError) as exc:
        sys.exit(f"configuration error: {exc}")
    try:
        _run(args, settings)
    except DataKeyError as exc:
        sys.exit(f"configuration error: {exc}")


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "serve":
        if args.host:
            settings = replace(settings, host=args.host)
        if args.port:
            settings = replace(settings, port=args.port)
        _serve(settings)
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("database is up to date")
    elif args.command == "rotate-data-key":
        from server.data_keys import RotationRefused, rotate

        try:
            done = rotate(settings, from_env=bool(os.environ.get("TC_DATA_KEY", "").strip()))
        except RotationRefused as exc:
            sys.exit(str(exc))
        print(
            f"{done.rewrapped} files rewrapped ({done.already_current} already were): "
            f"{done.message}"
        )
    elif args.command == "audit":
        sys.exit(asyncio.run(_audit_verify(settings, args.since)))
    elif args.command == "create-user":
        asyncio.run(_create_user(settings, args))
    elif args.command == "approve-user":
        asyncio.run(_approve_user(settings, args.email))
    elif args.command == "demo":
        asyncio.run(_demo(settings))
    elif args.command == "media":
        from media.node import run_node  # aiortc is loaded by media nodes and SFU calls only

        settings = settings.with_secret()
        app_url = args.app or settings.effective_public_url
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_node(app_url, settings.secret_key))
