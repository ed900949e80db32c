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


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1.5e1", "15.00"),
        ("12.3e-1", "1.23"),
        ("1e-2", "0.01"),
        ("1E9", "1000000000.00"),
        ("0.10e1", "1.00"),
        (Decimal("1E+2"), "100.00"),
    ],
)
def test_an_amount_in_exponent_notation_is_the_number_it_denotes(given: object, expected: str) -> None:
    assert values.format_amount(values.amount(given)) == expected


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ("1e10", "at most 1000000000.00"),
        ("1e-3", "at most 2 decimal places"),
        ("1e", "not a decimal number"),
        ("e5", "not a decimal number"),
        ("1e+", "not a decimal number"),
        ("1 e2", "not a decimal number"),
    ],
)
def test_an_exponent_that_leaves_the_rules_or_is_malformed_is_refused(given: str, rule: str) -> None:
    with pytest.raises(values.RuleBroken, match=rule):
        values.amount(given)


def test_a_plus_sign_is_allowed() -> None:
    assert values.amount("+5") == Decimal("5.00")


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ("-0", "greater than 0"),
        ("-0.00", "greater than 0"),
        ("+0", "greater than 0"),
        (-1, "greater than 0"),
        (Decimal("-0.01"), "greater than 0"),
        ("+-5", "not a decimal number"),
        ("--5", "not a decimal number"),
        ("- 5", "not a decimal number"),
    ],
)
def test_a_negative_zero_or_doubled_sign_is_refused(given: object, rule: str) -> None:
    with pytest.raises(values.RuleBroken, match=rule):
        values.amount(given)


@pytest.mark.parametrize("given", ["\t5\n", " 5", "5 ", "\r\n5\r\n"])
def test_ascii_whitespace_around_an_amount_is_ignored(given: str) -> None:
    assert values.amount(given) == Decimal("5.00")


@pytest.mark.parametrize("given", [" ", "\n", "5 0", "1 000", "\u20035", "5\u2028", "\u3000"], ids=repr)
def test_whitespace_alone_inside_or_beyond_ascii_is_not_a_number(given: str) -> None:
    with pytest.raises(values.RuleBroken, match="not a decimal number"):
        values.amount(given)


@pytest.mark.parametrize("given", ["NaN", "nan", "sNaN", "inf", "-Infinity"])
def test_non_finite_text_is_not_a_decimal_number(given: str) -> None:
    with pytest.raises(values.RuleBroken, match="not a decimal number"):
        values.amount(given)


@pytest.mark.parametrize("given", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_a_non_finite_decimal_is_refused(given: Decimal) -> None:
    with pytest.raises(values.RuleBroken, match="must be a finite number"):
        values.amount(given)


@pytest.mark.parametrize("given", [float("nan"), float("inf"), True, None, b"12", [1], {"amount": 1}])
def test_floats_bools_and_other_types_are_refused_before_any_parsing(given: object) -> None:
    """``True`` is an ``int`` to Python and would otherwise be 1.00; a float would already be inexact."""
    with pytest.raises(values.RuleBroken, match="a number or a decimal string"):
        values.amount(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("1.000", "1.00"), ("1.0000000000", "1.00"), ("1." + "0" * 50, "1.00"), (Decimal("2.500"), "2.50")],
)
def test_trailing_zeros_beyond_two_places_change_nothing(given: object, expected: str) -> None:
    assert values.format_amount(values.amount(given)) == expected


@pytest.mark.parametrize("given", ["0.009", "1.0000000000000000000000000001", Decimal("0.015")])
def test_a_fraction_of_a_cent_anywhere_is_refused_never_rounded(given: object) -> None:
    with pytest.raises(values.RuleBroken, match="at most 2 decimal places"):
        values.amount(given)


@pytest.mark.parametrize("given", ["1000000000", "1000000000.00", 1000000000, "1E9", Decimal("1000000000.00")])
def test_the_ceiling_itself_is_allowed(given: object) -> None:
    assert values.amount(given) == values.MAX_AMOUNT


@pytest.mark.parametrize("given", ["1000000000.001", 1000000001, Decimal("1000000000.01"), "1e30", 10**30])
def test_anything_over_the_ceiling_is_refused_whatever_its_places(given: object) -> None:
    with pytest.raises(values.RuleBroken, match=r"at most 1000000000\.00"):
        values.amount(given)


@pytest.mark.parametrize(
    "given",
    ["\uff11\uff12", "\u0967\u0968", "1\u0662", "\u00b2", "1,000", "1_000.00", "0x10", "1/2", "\u0661.\u0665"],
    ids=["full-width", "devanagari", "mixed scripts", "superscript", "comma", "underscore", "hex", "fraction", "dot"],
)
def test_only_ascii_digits_without_separators_make_an_amount(given: str) -> None:
    with pytest.raises(values.RuleBroken, match="not a decimal number"):
        values.amount(given)


@pytest.mark.parametrize(("text", "number"), [("12", 12), ("12.50", Decimal("12.5")), (".5", Decimal("0.5"))])
def test_a_string_and_the_number_it_spells_are_the_same_amount(text: str, number: object) -> None:
    assert values.amount(text) == values.amount(number)
    assert values.format_amount(values.amount(text)) == values.format_amount(values.amount(number))


def test_the_rule_names_the_field_it_was_given() -> None:
    with pytest.raises(values.RuleBroken, match=r"^'price' must be greater than 0\.$"):
        values.amount("0", "price")
