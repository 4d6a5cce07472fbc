"""Notification channels: log, webhook (urllib), email (smtplib). Each ``send`` either
delivers or raises; retries and back-off belong to the dispatcher and its outbox.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any, Protocol

from coldchain.core.errors import DeliveryError

log = logging.getLogger("coldchain.alarms")


class Channel(Protocol):
    name: str

    def send(self, subject: str, document: dict[str, Any]) -> None: ...


class LogChannel:
    """Writes each notification to the log (always on)."""

    name = "log"

    def send(self, subject: str, document: dict[str, Any]) -> None:
        log.warning("%s %s", subject, json.dumps(document, sort_keys=True))


class WebhookChannel:
    """POSTs the JSON document; any 2xx is delivered, anything else (or a timeout) is not."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must start with http:// or https://: {url!r}")
        self._url = url
        self._timeout_s = timeout_s

    def send(self, subject: str, document: dict[str, Any]) -> None:
        body = json.dumps({"subject": subject, **document}).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "coldchain"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook answered {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"webhook unreachable: {exc}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook answered {status}")


class SmtpChannel:
    """Sends an email per notification (plain SMTP, STARTTLS when asked)."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        timeout_s: float = 10.0,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if not recipients:
            raise ValueError("email needs at least one recipient")
        self._host, self._port, self._sender = host, port, sender
        self._recipients = list(recipients)
        self._timeout_s, self._starttls = timeout_s, starttls
        self._username, self._password = username, password

    def send(self, subject: str, document: dict[str, Any]) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self._sender
        message["To"] = ", ".join(self._recipients)
        lines = [f"{key}: {value}" for key, value in document.items()]
        message.set_content("\n".join(lines) + "\n")
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
                if self._starttls:
                    smtp.starttls()
                if self._username and self._password:
                    smtp.login(self._username, self._password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"email not sent: {exc}") from None
