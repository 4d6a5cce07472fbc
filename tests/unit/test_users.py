"""Roles, permissions and the rules for names and passwords (pure)."""

from __future__ import annotations

import pytest

from coldchain.core.errors import PermissionDeniedError, ValidationError
from coldchain.core.users import (
    Action,
    Role,
    User,
    authorize,
    check_name,
    check_password,
    permissions,
    secret_digest,
)


def test_roles_are_ordered_viewer_operator_qa_admin() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.QA < Role.ADMIN
    assert [Role.parse(text) for text in ("viewer", " Operator ", "QA", "admin")] == list(Role)


def test_an_unknown_role_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="viewer, operator, qa, admin"):
        Role.parse("root")


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, ["read"]),
        (Role.OPERATOR, ["read", "acknowledge alarms", "manage shipments", "send commands"]),
        (
            Role.QA,
            ["read", "acknowledge alarms", "manage shipments", "send commands", "decide release"],
        ),
        (
            Role.ADMIN,
            [
                "read",
                "acknowledge alarms",
                "manage shipments",
                "send commands",
                "decide release",
                "manage users",
            ],
        ),
    ],
)
def test_each_role_may_what_the_roles_below_may(role: Role, allowed: list[str]) -> None:
    assert permissions(User("u", role)) == allowed


def test_authorize_says_what_the_action_takes() -> None:
    authorize(User("ana", Role.OPERATOR), Action.ACKNOWLEDGE_ALARM)
    with pytest.raises(PermissionDeniedError, match=r"ana is a viewer; .* takes operator or above"):
        authorize(User("ana", Role.VIEWER), Action.ACKNOWLEDGE_ALARM)


@pytest.mark.parametrize("name", ["ana", "ana.b", "a_b-c@site", "A1", "x" * 64])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", " ana", "-ana", "ana b", "ana/b", "x" * 65, "åsa", "a\n"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        check_name(name)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 12"),
        ("x" * 1025, "at most 1024"),
        ("Operator-Ana", "not be the user name"),
    ],
)
def test_weak_passwords_are_refused(password: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        check_password(password, "operator-ana")


def test_secrets_are_stored_as_sha256_digests() -> None:
    digest = secret_digest("token")
    assert len(digest) == 64
    assert digest != secret_digest("token2")
