"""Who is an operator: the gateway's bearer check, and the token ``make run`` makes once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.operators import OperatorAccess, is_operations
from servicekit.problems import Unauthorized
from stack.secrets import operator_token

ACCESS = OperatorAccess("s3cret-token", "alice-ops")


def test_the_right_bearer_token_names_the_configured_operator() -> None:
    assert ACCESS.operator_of("Bearer s3cret-token") == "alice-ops"
    assert ACCESS.operator_of("bearer s3cret-token") == "alice-ops"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token", "s3cret-token"],
)
def test_anything_else_is_a_401_with_a_bearer_challenge(authorization: str | None) -> None:
    with pytest.raises(Unauthorized) as refused:
        ACCESS.operator_of(authorization)
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_without_a_configured_token_nobody_is_an_operator() -> None:
    with pytest.raises(Unauthorized):
        OperatorAccess("").operator_of("Bearer ")


@pytest.mark.parametrize(("path", "expected"), [("/ops", True), ("/ops/orders", True), ("/opsx", False), ("/", False)])
def test_operations_paths(path: str, expected: bool) -> None:
    assert is_operations(path) is expected


def test_make_run_keeps_one_random_token_readable_by_its_owner_only(tmp_path: Path) -> None:
    token, path = operator_token(tmp_path / "data", env={})

    assert path == tmp_path / "data" / "operator-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32
    assert operator_token(tmp_path / "data", env={}) == (token, path)
    assert operator_token(tmp_path / "other", env={})[0] != token


def test_the_environment_s_token_wins_and_no_file_is_written(tmp_path: Path) -> None:
    assert operator_token(tmp_path, env={"GOZON_OPERATOR_TOKEN": "given"}) == ("given", None)
    assert list(tmp_path.iterdir()) == []
