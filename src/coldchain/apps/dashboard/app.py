"""The dashboard as a FastAPI application: the page, the sign-in page and the JSON API.

Every ``/api`` route needs a session (cookie from ``POST /api/session``) or an API token
(``Authorization: Bearer ...``); reading takes a viewer, acknowledging an alarm an operator,
and so does sending a device a command.
Errors are ``{"error": "..."}`` with a 4xx (503 if the store is unavailable), as before.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route signatures at run
# time, and their ``Depends(...)`` name dependencies local to create_app.

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from coldchain.adapters.sqlite import SqliteDatabase
from coldchain.apps.accounts import Accounts
from coldchain.apps.dashboard.api import Api
from coldchain.apps.dashboard.guard import RequestGuard, SecurityHeaders
from coldchain.core.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    ValidationError,
)
from coldchain.core.users import SESSION_LIFETIME, Action, User, authorize, permissions

log = logging.getLogger("coldchain.dashboard")
SESSION_COOKIE: Final = "coldchain-session"
SESSION_COOKIE_TLS: Final = "__Host-coldchain-session"  # the prefix pins it to this origin
_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
}
_ASSETS: Final = ("app.js", "style.css", "signin.js")
_NO_SESSION: Final = "sign in first, or send Authorization: Bearer <token>"


@dataclass(frozen=True)
class AppConfig:
    """What the application needs; the server adds sockets, TLS files and timeouts."""

    database: Path
    accounts: Accounts
    allowed_hosts: tuple[str, ...]
    tls: bool = False
    clock: Callable[[], datetime] | None = None

    @property
    def session_cookie(self) -> str:
        return SESSION_COOKIE_TLS if self.tls else SESSION_COOKIE


class SignIn(BaseModel):
    """``POST /api/session``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Acknowledge(BaseModel):
    """``POST /api/alarms/{id}/ack``: who acknowledges is the signed-in user, never the body."""

    model_config = ConfigDict(extra="ignore")  # the old page also sent "by"; it is not used
    comment: str = Field(max_length=2000, description="What was done (required).")


class ShipmentIn(BaseModel):
    """A new shipment (planned; start it with ``POST /api/shipments/{id}/start``)."""

    id: str = Field(max_length=64)
    product: str = Field(max_length=200)
    origin: str = Field(max_length=200)
    destination: str = Field(max_length=200)
    devices: list[str] = Field(min_length=1, max_length=100)
    planned_start: str | None = Field(default=None, description="ISO 8601 with a zone")
    planned_end: str | None = Field(default=None, description="ISO 8601 with a zone")


class Step(BaseModel):
    reason: str = Field(default="", max_length=2000)


class DecisionIn(BaseModel):
    """QA's release decision; a later one corrects it (both stay in the audit trail)."""

    decision: str = Field(description="release, quarantine or reject")
    reason: str = Field(max_length=2000, description="Why (required).")


class CommandIn(BaseModel):
    """A command for one device; the simulator's devices know ``self-test``, ``set-interval``
    (``{"seconds": "30"}``) and ``reboot``, and answer any other name with ``rejected``.
    """

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-64 letters, digits or '-', e.g. self-test")
    args: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, description="At most 16, strings to strings"
    )


class Session(BaseModel):
    """Who is signed in and what they may do."""

    name: str
    role: str
    permissions: list[str]
    expires_at: str | None = None


class _Stores:
    """One telemetry connection per worker thread (SQLite connections are not shared)."""

    def __init__(self, database: Path, clock: Callable[[], datetime] | None) -> None:
        self.database = database
        self.clock = clock
        self._local = threading.local()
        self._opened: list[SqliteDatabase] = []
        self._lock = threading.Lock()

    def api(self) -> Api:
        found: Api | None = getattr(self._local, "api", None)
        if found is None:
            db = SqliteDatabase(self.database)
            with self._lock:
                self._opened.append(db)
            found = Api(db) if self.clock is None else Api(db, now=self.clock)
            self._local.api = found
        return found

    def close(self) -> None:
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()


def _json(document: Any, status: int = 200) -> Response:
    # json.dumps straight to bytes: FastAPI's jsonable_encoder walks every value first, 7x the
    # time on a 24,000-bucket trend (254 ms against 36 ms).
    return Response(json.dumps(document).encode(), status, media_type="application/json")


def _session(user: User, expires: datetime | None = None) -> dict[str, Any]:
    return Session(
        name=user.name,
        role=user.role.label,
        permissions=permissions(user),
        expires_at=None if expires is None else expires.isoformat(),
    ).model_dump()


def create_app(config: AppConfig) -> FastAPI:  # noqa: PLR0915 - routes read best in one place
    """The dashboard application over ``config.database`` and ``config.accounts``."""
    stores = _Stores(config.database, config.clock)
    accounts = config.accounts
    cookie_name = config.session_cookie

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        stores.close()

    app = FastAPI(
        title="coldchain dashboard API",
        version="1",
        description=(
            "The JSON API behind the dashboard page. Authenticate with the session cookie "
            "(`POST /api/session`) or an API token (`coldchain user token NAME`, sent as "
            "`Authorization: Bearer <token>`). Reads need a viewer; acknowledging an alarm, "
            "the shipment actions and sending a device a command an operator; the release "
            "decision qa. State-changing requests take `Content-Type: application/json`; "
            "a browser's must come from this origin."
        ),
        openapi_url=None,  # served below, behind authentication
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    # The last added runs first: headers on everything, then the host check, then the guard.
    app.add_middleware(RequestGuard, session_cookie=cookie_name)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))
    app.add_middleware(SecurityHeaders)

    bearer = HTTPBearer(auto_error=False, description="An API token: coldchain user token NAME")
    cookie = APIKeyCookie(
        name=cookie_name, auto_error=False, description="The session from POST /api/session"
    )

    def current_user(
        token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        session: Annotated[str | None, Depends(cookie)],
    ) -> User:
        if token is not None:
            return accounts.token_user(token.credentials)
        if session:
            return accounts.session_user(session)
        raise AuthenticationError(_NO_SESSION)

    def reader(user: Annotated[User, Depends(current_user)]) -> User:
        authorize(user, Action.READ)
        return user

    def acknowledger(user: Annotated[User, Depends(current_user)]) -> User:
        authorize(user, Action.ACKNOWLEDGE_ALARM)
        return user

    def shipper(user: Annotated[User, Depends(current_user)]) -> User:
        authorize(user, Action.MANAGE_SHIPMENTS)
        return user

    def commander(user: Annotated[User, Depends(current_user)]) -> User:
        authorize(user, Action.SEND_COMMANDS)
        return user

    def qa(user: Annotated[User, Depends(current_user)]) -> User:
        authorize(user, Action.DECIDE_RELEASE)
        return user

    def query(**values: str | None) -> dict[str, str]:
        return {name.rstrip("_"): value for name, value in values.items() if value is not None}

    # -- errors ------------------------------------------------------------------------------
    def handler(status: int) -> Callable[[Request, Exception], Response]:
        def handle(request: Request, exc: Exception) -> Response:
            response = _json({"error": str(exc)}, status)
            if status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            return response

        return handle

    for error, status in (
        (AuthenticationError, 401),
        (PermissionDeniedError, 403),
        (ValidationError, 400),
        (BadRequestError, 400),
        (NotFoundError, 404),
        (StorageError, 503),
    ):
        app.add_exception_handler(error, handler(status))

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _json({"error": problems or "bad request"}, 400)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            what = "endpoint" if request.url.path.startswith("/api/") else "page"
            target = f"{request.method} {request.url.path}" if what == "endpoint" else ""
            message = f"no such {what}: {target or request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return _json({"error": message}, exc.status_code)

    # -- pages -------------------------------------------------------------------------------
    static = resources.files("coldchain.apps.dashboard").joinpath("static")
    files = {name: static.joinpath(name).read_bytes() for name in (*_ASSETS, "index.html")}
    files["signin.html"] = static.joinpath("signin.html").read_bytes()

    def page(name: str) -> Response:
        return Response(files[name], media_type=_TYPES[name.rsplit(".", 1)[1]])

    @app.get("/", include_in_schema=False)
    def index(session: Annotated[str | None, Depends(cookie)]) -> Response:
        try:
            if session:
                accounts.session_user(session)
                return page("index.html")
        except AuthenticationError:
            pass
        return RedirectResponse("/signin", status_code=303)

    @app.get("/signin", include_in_schema=False)
    def signin_page() -> Response:
        return page("signin.html")

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in _ASSETS:
            raise HTTPException(404)
        return page(name)

    # -- session -----------------------------------------------------------------------------
    @app.post("/api/session", summary="Sign in: sets the session cookie", tags=["session"])
    def sign_in(body: SignIn, request: Request) -> Response:
        signed_in = accounts.sign_in(body.name, body.password)
        response = _json(_session(signed_in.user, signed_in.expires))
        response.set_cookie(
            cookie_name,
            signed_in.token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/",
            secure=config.tls,
            httponly=True,
            samesite="strict",
        )
        client = request.client.host if request.client else "?"
        log.info("%s signed in from %s", signed_in.user.name, client)
        return response

    @app.get("/api/session", summary="Who is signed in", tags=["session"])
    def who(user: Annotated[User, Depends(reader)]) -> Session:
        return Session(name=user.name, role=user.role.label, permissions=permissions(user))

    @app.delete("/api/session", summary="Sign out: ends the session", tags=["session"])
    def sign_out(session: Annotated[str | None, Depends(cookie)]) -> Response:
        if session:
            accounts.sign_out(session)
        response = _json({"signed_out": True})
        response.delete_cookie(
            cookie_name, path="/", secure=config.tls, httponly=True, samesite="strict"
        )
        return response

    # -- reads -------------------------------------------------------------------------------
    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(user: Annotated[User, Depends(reader)]) -> Response:
        return _json(app.openapi())

    @app.get("/api/health", summary="Totals", tags=["fleet"])
    def health(user: Annotated[User, Depends(reader)]) -> Response:
        return _json(stores.api().health())

    @app.get(
        "/api/profile",
        summary="The alarm profile the worker runs with: band, rules, silence time",
        tags=["fleet"],
    )
    def profile(user: Annotated[User, Depends(reader)]) -> Response:
        return _json(stores.api().profile())

    @app.get("/api/devices", summary="Every device and its latest reading", tags=["fleet"])
    def devices(user: Annotated[User, Depends(reader)]) -> Response:
        return _json(stores.api().devices())

    @app.get(
        "/api/devices/{device_id}",
        summary="One device: alarms, events, configuration, commands and firmware jobs",
        tags=["fleet"],
    )
    def device(device_id: str, user: Annotated[User, Depends(reader)]) -> Response:
        return _json(stores.api().device(device_id))

    @app.get(
        "/api/readings", summary="One device's readings as min/max/mean buckets", tags=["fleet"]
    )
    def readings(
        user: Annotated[User, Depends(reader)],
        device: str | None = None,
        hours: str | None = None,
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: str | None = None,
        points: str | None = None,
    ) -> Response:
        params = query(device=device, hours=hours, from_=from_, to=to, points=points)
        return _json(stores.api().readings(params))

    @app.get("/api/trend", summary="Every device's buckets over a window", tags=["fleet"])
    def trend(
        user: Annotated[User, Depends(reader)],
        hours: str | None = None,
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: str | None = None,
        points: str | None = None,
    ) -> Response:
        return _json(stores.api().trend(query(hours=hours, from_=from_, to=to, points=points)))

    @app.get("/api/ingest", summary="Readings and dead letters per minute", tags=["fleet"])
    def ingest(user: Annotated[User, Depends(reader)], minutes: str | None = None) -> Response:
        return _json(stores.api().ingest(query(minutes=minutes)))

    @app.get("/api/alarms", summary="Alarm records, newest first", tags=["alarms"])
    def alarms(
        user: Annotated[User, Depends(reader)],
        active: str | None = None,
        device: str | None = None,
        fleet: str | None = None,
        limit: str | None = None,
    ) -> Response:
        params = query(active=active, device=device, fleet=fleet, limit=limit)
        return _json(stores.api().alarms(params))

    @app.get("/api/deadletters", summary="Newest dead letters and reasons", tags=["fleet"])
    def dead_letters(user: Annotated[User, Depends(reader)], limit: str | None = None) -> Response:
        return _json(stores.api().dead_letters(query(limit=limit)))

    @app.get(
        "/api/shipments", summary="Shipments (status=planned|active|ended)", tags=["shipments"]
    )
    def shipments(user: Annotated[User, Depends(reader)], status: str | None = None) -> Response:
        return _json(stores.api().shipments(query(status=status)))

    @app.get(
        "/api/shipments/{shipment_id}",
        summary="One shipment, its alarms and its audit trail",
        tags=["shipments"],
    )
    def shipment(shipment_id: str, user: Annotated[User, Depends(reader)]) -> Response:
        return _json(stores.api().shipment(shipment_id))

    @app.get("/api/audit", summary="The audit trail, newest first", tags=["shipments"])
    def audit(
        user: Annotated[User, Depends(reader)], subject: str | None = None, limit: str | None = None
    ) -> Response:
        return _json(stores.api().audit(query(subject=subject, limit=limit)))

    # -- writes, each as the signed-in user and into the audit trail -------------------------
    @app.post("/api/shipments", summary="Create a shipment (operator or above)", tags=["shipments"])
    def create_shipment(body: ShipmentIn, user: Annotated[User, Depends(shipper)]) -> Response:
        created = stores.api().create_shipment(body.model_dump(), user.name)
        log.info("shipment %s created by %s", body.id, user.name)
        return _json(created, 201)

    @app.post(
        "/api/shipments/{shipment_id}/start",
        summary="Start a shipment now (operator or above)",
        tags=["shipments"],
    )
    def start_shipment(
        shipment_id: str, body: Step, user: Annotated[User, Depends(shipper)]
    ) -> Response:
        return _json(stores.api().shipment_step(shipment_id, "start", user.name, body.reason))

    @app.post(
        "/api/shipments/{shipment_id}/end",
        summary="End a shipment now (operator or above)",
        tags=["shipments"],
    )
    def end_shipment(
        shipment_id: str, body: Step, user: Annotated[User, Depends(shipper)]
    ) -> Response:
        return _json(stores.api().shipment_step(shipment_id, "end", user.name, body.reason))

    @app.post(
        "/api/shipments/{shipment_id}/decision",
        summary="Record QA's release decision (qa or above)",
        tags=["shipments"],
    )
    def decide(shipment_id: str, body: DecisionIn, user: Annotated[User, Depends(qa)]) -> Response:
        done = stores.api().decide(shipment_id, body.decision, body.reason, user.name)
        log.info("shipment %s decided %s by %s", shipment_id, body.decision, user.name)
        return _json(done)

    # -- devices -----------------------------------------------------------------------------
    @app.post(
        "/api/devices/{device_id}/commands",
        summary="Queue a command for a device (operator or above); the control service sends it",
        status_code=202,
        tags=["fleet"],
    )
    def send_command(
        device_id: str, body: CommandIn, user: Annotated[User, Depends(commander)]
    ) -> Response:
        queued = stores.api().send_command(device_id, body.name, body.args, user.name)
        log.info(
            "command %s (%s) for %s sent by %s",
            queued["command_id"],
            body.name,
            device_id,
            user.name,
        )
        return _json(queued, 202)

    # -- alarms ------------------------------------------------------------------------------
    @app.post(
        "/api/alarms/{alarm_id}/ack",
        summary="Acknowledge an alarm as the signed-in user (operator or above)",
        tags=["alarms"],
    )
    def acknowledge(
        alarm_id: str, body: Acknowledge, user: Annotated[User, Depends(acknowledger)]
    ) -> Response:
        acked = stores.api().acknowledge(alarm_id, user.name, body.comment)
        log.info("alarm %s acknowledged by %s", alarm_id, user.name)
        return _json(acked)

    return app
