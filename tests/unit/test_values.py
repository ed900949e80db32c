"""The value rules shared by the HTTP API and the event decoder."""

from decimal import Decimal

import pytest

from messaging import values


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ("0", "greater than 0"),
        ("-5", "greater than 0"),
        ("0.001", "at most 2 decimal places"),
        ("1000000000.01", "at most 1000000000.00"),
        ("99999999999999.999", "at most 1000000000.00"),
        ("1_000", "not a decimal number"),
        ("١٢", "not a decimal number"),
        ("12\u00a0", "not a decimal number"),
        ("1e9999999999999999999", "not a decimal number"),
        ("Infinity", "not a decimal number"),
        (1.5, "a number or a decimal string"),
        (False, "a number or a decimal string"),
    ],
)
def test_an_amount_breaking_a_rule_names_it(given: object, rule: str) -> None:
    with pytest.raises(values.RuleBroken, match=rule):
        values.amount(given)


@pytest.mark.parametrize(("given", "expected"), [(" 7 ", "7.00"), ("1e2", "100.00"), (Decimal("0.10"), "0.10")])
def test_an_amount_within_the_rules_has_two_places(given: object, expected: str) -> None:
    assert values.format_amount(values.amount(given)) == expected


@pytest.mark.parametrize("given", ["", "a" * 65, "has space", "é", "dot.ted", None, 7])
def test_a_user_id_breaking_the_rule_is_refused(given: object) -> None:
    with pytest.raises(values.RuleBroken, match="1-64 characters"):
        values.user_id(given)


def test_the_longest_user_id_is_accepted() -> None:
    assert values.user_id("A-z_0" + "9" * 59) == "A-z_0" + "9" * 59
