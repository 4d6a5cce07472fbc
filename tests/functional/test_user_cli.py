"""``coldchain user ...`` and the accounts behind it: one-line errors, tokens shown once,
the first admin of ``coldchain up``, sessions that expire."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coldchain.adapters.sqlite.auth import SqliteAuthStore
from coldchain.apps.accounts import Accounts, ensure_admin
from coldchain.core.errors import AuthenticationError
from coldchain.core.users import Role
from tests.cli import run
from tests.dashboard import PASSWORD, accounts_for, cheap_passwords


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def user(
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return run(["--home", str(home), "user", *args], capsys)


def test_add_list_token_remove(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = user(
        home, capsys, monkeypatch, "add", "ana", "--role", "operator", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert (code, out) == (0, "added ana (operator)\n")
    code, out, _ = user(home, capsys, monkeypatch, "list", "--format", "json")
    [listed] = json.loads(out)
    assert (listed["name"], listed["role"], listed["tokens"]) == ("ana", "operator", 0)
    code, token, err = user(home, capsys, monkeypatch, "token", "ana", "--label", "cron")
    assert code == 0
    assert token.startswith("cct_")
    assert "shown once" in err
    accounts = accounts_for(home / "coldchain.db")
    try:
        assert accounts.token_user(token.strip()).name == "ana"
        assert accounts.sign_in("ana", PASSWORD).user.role is Role.OPERATOR
    finally:
        accounts.close()
    code, out, _ = user(home, capsys, monkeypatch, "list")
    assert "ana" in out
    assert "operator" in out
    code, out, _ = user(home, capsys, monkeypatch, "token", "ana", "--revoke")
    assert out == "revoked 1 tokens of ana\n"
    code, out, _ = user(home, capsys, monkeypatch, "remove", "ana")
    assert (code, out) == (0, "removed ana\n")
    assert user(home, capsys, monkeypatch, "list", "--format", "json")[1].strip() == "[]"


def test_password_is_asked_twice_and_must_match(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [PASSWORD, PASSWORD + "x", PASSWORD, PASSWORD]  # a typo, then a match
    monkeypatch.setattr("click.termui.hidden_prompt_func", lambda prompt: answers.pop(0))
    code, out, err = user(home, capsys, monkeypatch, "add", "ben", "--role", "viewer")
    assert code == 0, err
    assert "do not match" in out + err
    assert out.endswith("added ben (viewer)\n")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "bad name", "--password-stdin"], PASSWORD, "name: 'bad name' must be"),
        (["add", "ana", "--password-stdin"], "short\n", "password: must be at least 12"),
        (["add", "ana", "--password-stdin"], "", "nothing on standard input"),
        (["add", "ana", "--role", "root", "--password-stdin"], PASSWORD, "'root' is not one of"),
        (["add", "taken", "--password-stdin"], PASSWORD, "user 'taken' already exists"),
        (["remove", "nobody"], "", "no user 'nobody'"),
        (["token", "nobody"], "", "no user 'nobody'"),
        (["password", "nobody", "--password-stdin"], PASSWORD, "no user 'nobody'"),
    ],
)
def test_bad_input_is_one_line(
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    accounts = accounts_for(home / "coldchain.db")
    accounts.add("taken", Role.VIEWER, PASSWORD)
    accounts.close()
    code, _, err = user(home, capsys, monkeypatch, *args, stdin=stdin)
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_a_new_password_ends_the_users_sessions(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = accounts_for(home / "coldchain.db")
    accounts.add("ana", Role.OPERATOR, PASSWORD)
    session = accounts.sign_in("ana", PASSWORD)
    code, _, _ = user(
        home,
        capsys,
        monkeypatch,
        "password",
        "ana",
        "--password-stdin",
        stdin="another password!\n",
    )
    assert code == 0
    with pytest.raises(AuthenticationError):
        accounts.session_user(session.token)
    assert accounts.sign_in("ana", "another password!").user.name == "ana"
    accounts.close()


def test_the_first_admin_is_made_once(tmp_path: Path) -> None:
    database = tmp_path / "coldchain.db"
    made = ensure_admin(database)
    assert made is not None
    name, password = made
    assert name == "admin"
    assert len(password) >= 16
    assert ensure_admin(database) is None  # an admin exists: nothing printed the next time
    accounts = accounts_for(database)
    assert accounts.sign_in(name, password).user.role is Role.ADMIN
    accounts.close()


def test_sessions_expire_after_twelve_hours(tmp_path: Path) -> None:
    now = [datetime(2024, 1, 15, 9, 0, tzinfo=UTC)]
    accounts = Accounts(SqliteAuthStore(tmp_path / "auth.db"), cheap_passwords(), lambda: now[0])
    accounts.add("ana", Role.VIEWER, PASSWORD)
    session = accounts.sign_in("ana", PASSWORD)
    now[0] += timedelta(hours=11, minutes=59)
    assert accounts.session_user(session.token).name == "ana"
    now[0] += timedelta(minutes=1)
    with pytest.raises(AuthenticationError, match="expired"):
        accounts.session_user(session.token)
    accounts.close()


def test_a_hash_made_with_weaker_parameters_is_upgraded_at_sign_in(tmp_path: Path) -> None:
    store = SqliteAuthStore(tmp_path / "auth.db")
    Accounts(store, cheap_passwords()).add("ana", Role.VIEWER, PASSWORD)
    stronger = Accounts(store)  # argon2-cffi's defaults
    stronger.sign_in("ana", PASSWORD)
    found = store.user("ana")
    assert found is not None
    assert not stronger.passwords.needs_rehash(found[1])
    store.close()
