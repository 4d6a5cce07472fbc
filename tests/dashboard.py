"""Helpers for dashboard tests: a real uvicorn server in a thread, users with cheap hashes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from coldchain.adapters.passwords import Argon2Passwords
from coldchain.adapters.sqlite.auth import auth_path
from coldchain.apps.accounts import Accounts, open_accounts
from coldchain.apps.dashboard.server import Dashboard, ServerConfig
from coldchain.core.users import Role

PASSWORD = "a long enough test password"


def cheap_passwords() -> Argon2Passwords:
    """argon2id with test-sized cost (1 pass, 8 MiB): same code path, milliseconds per hash."""
    return Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))


def accounts_for(database: Path) -> Accounts:
    return open_accounts(auth_path(database), cheap_passwords())


@dataclass
class Running:
    """A dashboard serving on a free loopback port, and a user per role with a token."""

    server: Dashboard
    accounts: Accounts
    tokens: dict[str, str]

    @property
    def base(self) -> str:
        return self.server.url

    @property
    def origin(self) -> str:
        return self.server.url

    def client(
        self, role: str | None = "operator", headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Client:
        """An HTTP client with the token of the user named after ``role`` (None: no token)."""
        sent = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(
            base_url=self.base, headers={**sent, **(headers or {})}, timeout=10, **kwargs
        )

    @contextmanager
    def browser_session(self, role: str = "operator") -> Iterator[httpx.Client]:
        """A client signed in like the page: cookie session, Origin header on every request."""
        with httpx.Client(
            base_url=self.base, headers={"Origin": self.origin}, timeout=10
        ) as client:
            response = client.post("/api/session", json={"name": role, "password": PASSWORD})
            assert response.status_code == 200, response.text
            yield client


@contextmanager
def running_dashboard(
    database: Path,
    clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> Iterator[Running]:
    """Serve ``database`` on 127.0.0.1 (free port) with users viewer, operator, qa, admin."""
    accounts = accounts_for(database)
    tokens = {}
    for role in Role:
        if accounts.store.user(role.label) is None:
            accounts.add(role.label, role, PASSWORD)
        tokens[role.label] = accounts.issue_token(role.label, "tests")
    config = replace(
        ServerConfig(database, accounts, host="127.0.0.1", port=0, clock=clock), **options
    )
    server = Dashboard(config)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.server.started:
        assert thread.is_alive(), "dashboard stopped while starting"
        assert time.monotonic() < deadline, "dashboard did not start within 10 s"
        time.sleep(0.02)
    try:
        yield Running(server, accounts, tokens)
    finally:
        server.stop()
        thread.join(timeout=15)
        accounts.close()
        assert not thread.is_alive(), "dashboard did not stop"
