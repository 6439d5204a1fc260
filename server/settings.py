"""Deployment settings, read from ``TC_*`` environment variables (api.md, "Running").

Everything the application needs arrives through one ``Settings`` object so that tests build
applications with their own settings and no global state.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.filecrypt import new_master_key

log = logging.getLogger("teleconsult.settings")


class SettingsError(ValueError):
    """A ``TC_*`` variable has a value the server cannot use."""


@dataclass(frozen=True)
class PasswordHashing:
    """argon2id parameters. The default is RFC 9106's second recommended option
    (t=3, m=64 MiB, p=4); only code (tests, benchmarks) can choose cheaper ones."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 4


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    secret_key: str = ""
    smtp_url: str | None = None
    mail_from: str = "Téléconsult <no-reply@teleconsult.localhost>"
    sms_url: str | None = None
    redis_url: str | None = None
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks); from any other
    # peer the header is ignored, since a client can write it.
    trusted_proxies: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    sfu: bool = True
    # Bearer token of GET /metrics (Prometheus); unset: the endpoint is off.
    metrics_token: str | None = None
    upload_max_bytes: int = 20 * 1024 * 1024
    # Payment requests: "builtin" (the practice confirms what it received) or "stripe" (Checkout).
    payment_provider: str = "builtin"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"
    password_hashing: PasswordHashing = field(default_factory=PasswordHashing)
    # Run the background delivery worker (tests drive deliveries explicitly).
    delivery_worker: bool = True
    # Messages, documents and payment requests unread this long are notified (domain.md §7).
    notify_delay_s: int = 300
    # The VAPID key that signs Web Push requests (PEM or base64url raw key); generated into the
    # data directory when unset, like the secret key.
    vapid_private_key: str = ""
    # The master key(s) that seal stored files (base64url, 32 bytes; several separated by commas
    # during a rotation, the first sealing new files). Generated once into ``data_key`` in the
    # data directory when unset; never in the database.
    data_key: str = ""
    # Retention (server/privacy/retention.py): call quality samples, days after the call ended
    # and was coded; uploads never sent, hours.
    retain_call_samples_days: int = 90
    retain_unsent_uploads_hours: int = 24
    # Push services a browser's subscription may point at ("scheme://host[:port]" patterns):
    # the server POSTs to the endpoint a page gives, which must not reach inside the network.
    push_services: tuple[str, ...] = (
        "https://fcm.googleapis.com",
        "https://updates.push.services.mozilla.com",
        "https://*.push.services.mozilla.com",
        "https://web.push.apple.com",
        "https://*.push.apple.com",
        "https://*.notify.windows.com",
    )

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'teleconsult.db'}"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.effective_public_url).scheme == "https"

    def with_secret(self) -> Settings:
        """Return settings whose secret key and VAPID key are set, generating each one missing
        once into the data directory (a restart keeps browsers' push subscriptions valid)."""
        secret = self.secret_key or _kept_in(self.data_dir / "secret_key", _new_secret)
        vapid = self.vapid_private_key or _kept_in(
            self.data_dir / "vapid_private_key.pem", _new_vapid_key
        )
        return replace(self, secret_key=secret, vapid_private_key=vapid, data_key=self._data_key())

    def _data_key(self) -> str:
        if self.data_key:
            return self.data_key
        path = self.data_dir / "data_key"
        if not path.exists():
            if (self.uploads_dir / ".keycheck").exists():
                # Files were sealed with a key that is gone: a new one would open none of them.
                raise SettingsError(
                    f"the data key is missing: files in {self.uploads_dir} are sealed, but neither "
                    f"TC_DATA_KEY nor {path} is set. Restore the key from your backup."
                )
            log.warning(
                "generated the key that encrypts stored files into %s: back it up apart from "
                "the database and the files (without it no file can be read)",
                path,
            )
        return _kept_in(path, new_master_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        sfu = (opt("TC_SFU") or "on").lower()
        if sfu not in {"on", "off"}:
            raise SettingsError(f"TC_SFU must be 'on' or 'off', not {sfu!r}")
        for name in ("TC_SMTP_URL", "TC_SMS_URL", "TC_REDIS_URL", "TC_PUBLIC_URL"):
            value = opt(name)
            if value and not urlsplit(value).scheme:
                raise SettingsError(f"{name} must be a URL with a scheme, not {value!r}")
        smtp = opt("TC_SMTP_URL")
        if smtp and urlsplit(smtp).scheme not in {"smtp", "smtps"}:
            raise SettingsError("TC_SMTP_URL must start with smtp:// or smtps://")
        upload_max = opt("TC_UPLOAD_MAX_BYTES") or str(cls.upload_max_bytes)
        if not upload_max.isdigit() or int(upload_max) < 1024:
            raise SettingsError("TC_UPLOAD_MAX_BYTES must be a number of bytes (at least 1024)")
        provider = (opt("TC_PAYMENT_PROVIDER") or "builtin").lower()
        if provider not in {"builtin", "stripe"}:
            raise SettingsError(
                f"TC_PAYMENT_PROVIDER must be 'builtin' or 'stripe', not {provider!r}"
            )
        if provider == "stripe" and not (
            opt("TC_STRIPE_SECRET_KEY") and opt("TC_STRIPE_WEBHOOK_SECRET")
        ):
            raise SettingsError(
                "TC_PAYMENT_PROVIDER=stripe needs TC_STRIPE_SECRET_KEY and TC_STRIPE_WEBHOOK_SECRET"
            )
        metrics_token = opt("TC_METRICS_TOKEN")
        if metrics_token is not None and len(metrics_token) < 16:
            raise SettingsError("TC_METRICS_TOKEN must be at least 16 characters long")
        turn = tuple(u.strip() for u in (opt("TC_TURN_URLS") or "").split(",") if u.strip())
        proxies = tuple(
            p.strip() for p in (opt("TC_TRUSTED_PROXIES") or "").split(",") if p.strip()
        )
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise SettingsError(
                    f"TC_TRUSTED_PROXIES: {proxy!r} is not an address or a network"
                ) from exc
        delay = opt("TC_NOTIFY_DELAY_S") or str(cls.notify_delay_s)
        if not delay.isdigit() or not 10 <= int(delay) <= 86400:
            raise SettingsError("TC_NOTIFY_DELAY_S must be a number of seconds (10 to 86400)")
        notify_delay = int(delay)
        samples_days = opt("TC_RETAIN_CALL_SAMPLES_DAYS") or str(cls.retain_call_samples_days)
        if not samples_days.isdigit() or not 7 <= int(samples_days) <= 3650:
            raise SettingsError("TC_RETAIN_CALL_SAMPLES_DAYS must be a number of days (7 to 3650)")
        uploads_hours = opt("TC_RETAIN_UNSENT_UPLOADS_HOURS") or str(
            cls.retain_unsent_uploads_hours
        )
        if not uploads_hours.isdigit() or not 1 <= int(uploads_hours) <= 24 * 90:
            raise SettingsError(
                "TC_RETAIN_UNSENT_UPLOADS_HOURS must be a number of hours (1 to 2160)"
            )
        return cls(
            data_dir=Path(opt("TC_DATA_DIR") or "var"),
            database_url=opt("TC_DATABASE_URL") or "",
            public_url=opt("TC_PUBLIC_URL") or "",
            secret_key=opt("TC_SECRET_KEY") or "",
            smtp_url=smtp,
            mail_from=opt("TC_MAIL_FROM") or cls.mail_from,
            sms_url=opt("TC_SMS_URL"),
            redis_url=opt("TC_REDIS_URL"),
            trusted_proxies=proxies,
            turn_urls=turn,
            turn_secret=opt("TC_TURN_SECRET"),
            sfu=sfu == "on",
            metrics_token=metrics_token,
            upload_max_bytes=int(upload_max),
            payment_provider=provider,
            stripe_secret_key=opt("TC_STRIPE_SECRET_KEY"),
            stripe_webhook_secret=opt("TC_STRIPE_WEBHOOK_SECRET"),
            stripe_api_base=opt("TC_STRIPE_API_BASE") or cls.stripe_api_base,
            notify_delay_s=notify_delay,
            vapid_private_key=opt("TC_VAPID_PRIVATE_KEY") or "",
            data_key=opt("TC_DATA_KEY") or "",
            retain_call_samples_days=int(samples_days),
            retain_unsent_uploads_hours=int(uploads_hours),
            push_services=tuple(
                p.strip() for p in (opt("TC_PUSH_SERVICES") or "").split(",") if p.strip()
            )
            or cls.push_services,
        )


def _kept_in(path: Path, make: Callable[[], str]) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(make())
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text().strip()


def _new_secret() -> str:
    return secrets.token_urlsafe(48)


def _new_vapid_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
