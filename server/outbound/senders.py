"""Email over SMTP (aiosmtplib), SMS through an HTTP gateway, or both to a local outbox.

The outbox is the embedded default: a newcomer running ``make run`` with no mail server finds each
message as a file in ``TC_DATA_DIR/outbox/`` (an ``.eml`` opens in any mail client).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiohttp
import aiosmtplib

from server import limits
from server.models import new_id


class DeliveryError(Exception):
    """The message did not leave: the caller retries later and shows the failure."""


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Sms:
    to: str
    text: str


class EmailSender(Protocol):
    async def send(self, email: Email) -> None: ...


class SmsSender(Protocol):
    async def send(self, sms: Sms) -> None: ...


def build_message(email: Email, mail_from: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = email.to
    message["Subject"] = email.subject
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


class SmtpEmailSender:
    def __init__(self, url: str, mail_from: str) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "localhost"
        self._tls = parts.scheme == "smtps"
        self._port = parts.port or (465 if self._tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._from = mail_from

    async def send(self, email: Email) -> None:
        try:
            await aiosmtplib.send(
                build_message(email, self._from),
                hostname=self._host,
                port=self._port,
                username=self._user,
                password=self._password,
                use_tls=self._tls,
                # Plain smtp:// still upgrades with STARTTLS when the server offers it.
                start_tls=None if not self._tls else False,
                timeout=limits.DELIVERY_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP {self._host}:{self._port}: {exc}") from exc


class HttpSmsSender:
    """POSTs ``{"to": "+33…", "text": "…"}`` to ``TC_SMS_URL``; any 2xx is a success."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self._url = url
        self._http = http

    async def send(self, sms: Sms) -> None:
        timeout = aiohttp.ClientTimeout(total=limits.DELIVERY_TIMEOUT_SECONDS)
        try:
            async with self._http.post(
                self._url, json={"to": sms.to, "text": sms.text}, timeout=timeout
            ) as response:
                if response.status >= 300:
                    body = (await response.text())[:200]
                    raise DeliveryError(f"SMS gateway answered {response.status}: {body}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"SMS gateway unreachable: {exc}") from exc


def _outbox_name(kind: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{kind}-{new_id()[:8]}"


class OutboxEmailSender:
    def __init__(self, directory: Path, mail_from: str) -> None:
        self._dir = directory
        self._from = mail_from

    async def send(self, email: Email) -> None:
        data = bytes(build_message(email, self._from))
        path = self._dir / f"{_outbox_name('email')}.eml"
        await asyncio.to_thread(_write_file, path, data)


class OutboxSmsSender:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    async def send(self, sms: Sms) -> None:
        data = json.dumps({"to": sms.to, "text": sms.text}, ensure_ascii=False, indent=2).encode()
        path = self._dir / f"{_outbox_name('sms')}.json"
        await asyncio.to_thread(_write_file, path, data)


def _write_file(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise DeliveryError(f"outbox {path.parent}: {exc}") from exc
