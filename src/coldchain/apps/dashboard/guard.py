"""ASGI middleware around the dashboard: security headers on every response, and for every
request that changes state a same-origin check, a JSON content type and a size limit.

Cross-site request forgery is refused in three independent ways: the session cookie is
``SameSite=Strict``; a state-changing request whose ``Origin`` (or ``Sec-Fetch-Site``) is not
this server's own origin gets 403 (a browser always sends ``Origin`` on such requests, and a
cookie-authenticated one without it is refused too); and only ``application/json`` bodies are
accepted (415), which a cross-site page cannot send without a CORS preflight this server never
grants. Scripts authenticate with a bearer token, which no browser attaches by itself.
"""

from __future__ import annotations

import json
import logging
from typing import Final

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("coldchain.dashboard")
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY: Final = 16 * 1024
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
_REPLACED: Final = frozenset(name for name, _ in SECURITY_HEADERS)


async def send_error(send: Send, status: int, message: str, close: bool = False) -> None:
    """A complete ``{"error": message}`` response; ``close`` ends the connection after it
    (for a refused body that was never read, rather than wait for it).
    """
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", []) if h[0].lower() not in _REPLACED]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


# A body too large is read and thrown away up to this much before the 413 goes out: closing
# a connection with unread data makes the kernel send a reset, which can destroy the 413 on
# its way to the client. Beyond it the connection is cut (the request deadline bounds time).
DRAIN_LIMIT: Final = 256 * 1024


async def _discard(receive: Receive, budget: int) -> None:
    """Read and drop what is left of a request body, at most ``budget`` bytes."""
    seen = 0
    while seen <= budget:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestGuard:
    """Refuses cross-origin and non-JSON state changes; bounds every request body.

    ``session_cookie`` is the name of the session cookie: a request carrying it (and no
    ``Authorization`` header) is a browser's, and must prove its origin.
    """

    def __init__(self, app: ASGIApp, session_cookie: str, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.session_cookie = session_cookie
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            if length.isdigit() and int(length) <= DRAIN_LIMIT:
                await _discard(receive, DRAIN_LIMIT)
            await send_error(send, 413, f"request body larger than {self.max_body} bytes", True)
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            client = scope.get("client") or ("?", 0)
            log.warning(
                "refused %s %s from %s: %s", scope["method"], scope["path"], client[0], refusal[1]
            )
            await send_error(send, *refusal)
            return
        body = b""
        while True:  # the body is small: read it whole, then hand it on
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                if message.get("more_body", False):
                    await _discard(receive, DRAIN_LIMIT - len(body))
                await send_error(send, 413, f"request body larger than {self.max_body} bytes", True)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        """Why a state-changing request is refused (status, message), or None."""
        served = f"{scope['scheme']}://{headers.get('host', '')}"
        origin = headers.get("origin")
        if origin is not None and origin != served:
            return 403, f"cross-origin request refused (origin {origin}, expected {served})"
        site = headers.get("sec-fetch-site")
        if site is not None and site != "same-origin":
            return 403, f"cross-site request refused (Sec-Fetch-Site: {site})"
        from_browser = self.session_cookie in _cookie_names(headers.get("cookie", ""))
        if origin is None and from_browser and "authorization" not in headers:
            return 403, "a signed-in browser request must carry its Origin"
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return 415, "send JSON, with Content-Type: application/json"
        return None


def _cookie_names(header: str) -> set[str]:
    return {part.split("=", 1)[0].strip() for part in header.split(";") if part.strip()}
