"""The parts of ``Idempotency-Key`` handling that need no database: which keys are acceptable, when two requests
count as the same one, and how a first or replayed response is sent. (Claiming and replaying are in
tests/integration/test_idempotency.py.)"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from orders import settings as orders_settings
from orders.domain import NewOrder
from orders.views import new_order_view
from payments import settings as payments_settings
from servicekit.problems import BadRequest
from servicekit.service import idempotency
from servicekit.service.idempotency import Outcome, fingerprint, parse_key, respond

# parse_key


def test_a_request_without_a_key_is_not_idempotent() -> None:
    assert parse_key(None) is None


@pytest.mark.parametrize(
    "key",
    ["k", "order-2026-11-25#1", "a" * 255, "!", "~", "550e8400-e29b-41d4-a716-446655440000", '"quoted"'],
    ids=["one", "punctuated", "255", "lowest visible", "highest visible", "uuid", "quotes"],
)
def test_a_key_of_1_to_255_visible_ascii_characters_is_taken_as_given(key: str) -> None:
    assert parse_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["", "a" * 256, "has space", " leading", "tab\there", "caf\u00e9", "\x7f", "line\nbreak", "\u200b"],
    ids=["empty", "256", "space", "leading space", "tab", "non-ascii", "DEL", "newline", "zero-width space"],
)
def test_any_other_key_is_a_400_naming_the_header_and_its_rule(key: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_key(key)
    assert caught.value.status_code == 400
    assert str(caught.value) == "Idempotency-Key must be 1-255 visible ASCII characters."


# fingerprint


def test_a_fingerprint_is_a_sha256_in_hex_and_the_same_every_time() -> None:
    """It is stored in a ``char(64)`` column and compared with the next request's."""
    first = fingerprint("POST", "/orders", {"amount": "1.00", "description": None})
    again = fingerprint("POST", "/orders", {"amount": "1.00", "description": None})
    assert first == again
    assert len(first) == 64
    assert set(first) <= set("0123456789abcdef")


def test_the_order_of_the_body_fields_does_not_matter() -> None:
    assert fingerprint("POST", "/orders", {"amount": "1.00", "description": "d"}) == fingerprint(
        "POST", "/orders", {"description": "d", "amount": "1.00"}
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/orders", {"amount": "1.00"}),
        ("POST", "/accounts/deposit", {"amount": "1.00"}),
        ("POST", "/orders", {"amount": "1.01"}),
        ("POST", "/orders", {"amount": "1.00", "description": None}),
        ("POST", "/orders", {}),
        ("POST/", "orders", {"amount": "1.00"}),
    ],
    ids=["method", "path", "amount", "an added field", "no fields", "parts shifted"],
)
def test_a_different_request_has_a_different_fingerprint(method: str, path: str, body: dict) -> None:
    """So a key reused for another request is refused (422) instead of replaying the wrong response."""
    assert fingerprint(method, path, body) != fingerprint("POST", "/orders", {"amount": "1.00"})


def test_an_order_written_as_2_5_or_2_50_is_the_same_request() -> None:
    """What Orders fingerprints is the validated order, so a client retrying with the amount written differently
    gets its first response back, not a 422."""
    written = [Decimal("2.5"), "2.50", "2.5", "+2.500"]
    prints = {
        fingerprint("POST", "/orders", new_order_view(NewOrder.from_json({"amount": amount}))) for amount in written
    }
    assert len(prints) == 1


def test_a_decimal_and_its_string_fingerprint_alike() -> None:
    assert fingerprint("POST", "/x", {"amount": Decimal("2.50")}) == fingerprint("POST", "/x", {"amount": "2.50"})


# respond


def test_a_first_response_is_sent_as_it_was_made() -> None:
    sent = respond(Outcome(201, {"id": "o-1", "amount": "2.50"}))
    assert sent.status == 201
    assert json.loads(sent.body) == {"id": "o-1", "amount": "2.50"}
    assert sent.content_type == "application/json"
    assert "Idempotent-Replayed" not in sent.headers


def test_a_replayed_response_is_the_stored_one_and_says_it_was_replayed() -> None:
    sent = respond(Outcome(200, {"balance": "15.00"}, replayed=True))
    assert sent.status == 200
    assert json.loads(sent.body) == {"balance": "15.00"}
    assert sent.headers["Idempotent-Replayed"] == "true"


# the claim's lifetime against the services' own limits


@pytest.mark.parametrize("service", [orders_settings, payments_settings], ids=["orders", "payments"])
def test_no_request_outlives_a_fresh_claim_under_the_default_statement_timeout(service) -> None:
    """A claim older than ``STALE_CLAIM_SECONDS`` is taken over by a retry; the statement timeout makes sure the
    request that holds it is gone by then, so two requests never both act on one key."""
    config = service.from_env({})
    assert config.statement_timeout_seconds < idempotency.STALE_CLAIM_SECONDS
    timeouts = config.server_settings()
    assert int(timeouts["statement_timeout"]) == int(config.statement_timeout_seconds * 1000)
    assert int(timeouts["idle_in_transaction_session_timeout"]) < idempotency.STALE_CLAIM_SECONDS * 1000
