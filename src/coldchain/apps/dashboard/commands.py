"""``coldchain dashboard`` and ``coldchain user``: thin commands over the server and accounts.

Registered on the main group by :mod:`coldchain.apps.cli`; FastAPI and uvicorn are imported
only when the dashboard command runs, so ``coldchain --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from coldchain.adapters.lockfile import FolderLock
from coldchain.adapters.sqlite.auth import auth_path
from coldchain.apps.accounts import Accounts, open_accounts
from coldchain.apps.cli.context import open_store, settings_of
from coldchain.apps.cli.options import LIST_FORMAT
from coldchain.apps.cli.tables import add_row, echo_documents, keep_whole
from coldchain.core.errors import ConfigurationError
from coldchain.core.users import Role

_AUTH_DB_HELP = "Users, sessions and tokens [auth.db beside the store]."


def _accounts(ctx: click.Context, auth_db: Path | None) -> Accounts:
    return open_accounts(auth_db or auth_path(settings_of(ctx).database))


def _password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ConfigurationError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; other than loopback it needs TLS or --insecure-bind.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--auth-db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_AUTH_DB_HELP
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Serve HTTPS with this certificate (PEM; with --tls-key).",
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Its key."
)
@click.option(
    "--allowed-host",
    "allowed_host",
    multiple=True,
    help="Another name the page is reached by, e.g. the machine's (repeatable). Requests "
    "for any other Host get 400.",
)
@click.option(
    "--insecure-bind",
    is_flag=True,
    help="Serve plain HTTP on a non-loopback --host (passwords in clear on that network).",
)
@click.pass_context
def dashboard(
    ctx: click.Context,
    host: str,
    port: int,
    db: Path | None,
    auth_db: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    allowed_host: tuple[str, ...],
    insecure_bind: bool,
) -> None:
    """Serve the operations dashboard and its JSON API until Ctrl-C or SIGTERM.

    Sign in as a user from `coldchain user add`; scripts send an API token from
    `coldchain user token`.

    Examples: coldchain dashboard --port 8080   (then open http://127.0.0.1:8080);
    coldchain dashboard --host 0.0.0.0 --tls-cert web.crt --tls-key web.key --allowed-host ops.lan
    """
    from coldchain.apps.dashboard.server import (  # noqa: PLC0415 - FastAPI only for this command
        Dashboard,
        ServerConfig,
    )

    settings = settings_of(ctx).override(db_path=db)
    open_store(settings).close()
    FolderLock(settings.home / "dashboard.lock", "a coldchain dashboard").acquire()
    accounts = open_accounts(auth_db or auth_path(settings.database))
    try:
        server = Dashboard(
            ServerConfig(
                settings.database,
                accounts,
                host=host,
                port=port,
                allowed_hosts=allowed_host,
                tls_cert=tls_cert,
                tls_key=tls_key,
                insecure_bind=insecure_bind,
            )
        )
        if not accounts.list():
            click.echo(
                "no dashboard users yet: add one with coldchain user add NAME --role admin",
                err=True,
            )
        click.echo(f"dashboard on {server.url} (API under /api/, description /api/openapi.json)")
        server.serve()
    finally:
        accounts.close()


@click.group()
def user() -> None:
    """Dashboard users (viewer < operator < qa < admin) and API tokens, kept in auth.db.

    A viewer reads; an operator also acknowledges alarms; qa and admin include both.
    """


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([role.label for role in Role]),
    default="viewer",
    show_default=True,
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--auth-db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_AUTH_DB_HELP
)
@click.pass_context
def user_add(
    ctx: click.Context, name: str, role: str, password_stdin: bool, auth_db: Path | None
) -> None:
    """Add a user; prompts for the password twice (at least 12 characters).

    Example: coldchain user add ana --role operator
    """
    accounts = _accounts(ctx, auth_db)
    try:
        accounts.check_new(name)  # before asking for a password
        added = accounts.add(name, Role.parse(role), _password(password_stdin))
    finally:
        accounts.close()
    click.echo(f"added {added.name} ({added.role.label})")


@user.command("list")
@LIST_FORMAT
@click.option(
    "--auth-db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_AUTH_DB_HELP
)
@click.pass_context
def user_list(ctx: click.Context, output: str, auth_db: Path | None) -> None:
    """Users with their role, open sessions and API tokens.

    Example: coldchain user list --format json
    """
    accounts = _accounts(ctx, auth_db)
    try:
        records = accounts.list()
    finally:
        accounts.close()
    rows: list[dict[str, Any]] = [
        {
            "name": r.user.name,
            "role": r.user.role.label,
            "created_at": r.created_at.isoformat(),
            "sessions": r.sessions,
            "tokens": r.tokens,
        }
        for r in records
    ]
    if output in ("json", "csv"):
        echo_documents(output, rows)
        return
    table = Table(title=f"{len(rows)} users")
    for column in ("name", "role", "created", "sessions", "tokens"):
        table.add_column(column)
    for row in rows:
        add_row(
            table, row["name"], row["role"], row["created_at"][:19], row["sessions"], row["tokens"]
        )
    Console().print(keep_whole(table, "name"))


@user.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for, e.g. the script's name.")
@click.option("--revoke", is_flag=True, help="Delete every token of NAME instead.")
@click.option(
    "--auth-db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_AUTH_DB_HELP
)
@click.pass_context
def user_token(
    ctx: click.Context, name: str, label: str, revoke: bool, auth_db: Path | None
) -> None:
    """Print a new API token for NAME, once (only its digest is kept), or revoke them all.

    Scripts send it as "Authorization: Bearer TOKEN" and act with NAME's role.

    Example: coldchain user token ana --label nightly-export
    """
    accounts = _accounts(ctx, auth_db)
    try:
        if revoke:
            click.echo(f"revoked {accounts.revoke_tokens(name)} tokens of {name}")
            return
        token = accounts.issue_token(name, label)
    finally:
        accounts.close()
    click.echo(token)
    click.echo("shown once: send it as 'Authorization: Bearer <token>'", err=True)


@user.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--auth-db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_AUTH_DB_HELP
)
@click.pass_context
def user_password(
    ctx: click.Context, name: str, password_stdin: bool, auth_db: Path | None
) -> None:
    """Set a new password for NAME; their open sessions end.

    Example: coldchain user password admin
    """
    accounts = _accounts(ctx, auth_db)
    try:
        accounts.set_password(name, _password(password_stdin))
    finally:
        accounts.close()
    click.echo(f"password of {name} changed; their sessions ended")


@user.command("remove")
@click.argument("name")
@click.option(
    "--auth-db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_AUTH_DB_HELP
)
@click.pass_context
def user_remove(ctx: click.Context, name: str, auth_db: Path | None) -> None:
    """Remove a user with their sessions and API tokens.

    Example: coldchain user remove ana
    """
    accounts = _accounts(ctx, auth_db)
    try:
        accounts.remove(name)
    finally:
        accounts.close()
    click.echo(f"removed {name}")


COMMANDS = (dashboard, user)
