from decimal import Decimal

import pytest

from servicekit.money import format_amount, parse_amount
from servicekit.problems import Unprocessable


@pytest.mark.parametrize(
    ("given", "expected"),
    [("69.75", "69.75"), (Decimal("69.7"), "69.70"), (12, "12.00"), (" 1.5 ", "1.50"), ("1E+2", "100.00")],
)
def test_valid_amounts_become_exact_two_place_decimals(given: object, expected: str) -> None:
    assert format_amount(parse_amount(given)) == expected


@pytest.mark.parametrize("given", ["0", "-0.01", "0.001", "1000000000.01", "1e-1000", "nan", "-inf", "", True, 1.5])
def test_invalid_amounts_are_rejected(given: object) -> None:
    with pytest.raises(Unprocessable):
        parse_amount(given)


def test_floats_are_refused_so_json_numbers_must_be_parsed_as_decimals() -> None:
    with pytest.raises(Unprocessable, match="number or a decimal string"):
        parse_amount(0.1)


@pytest.mark.parametrize(
    ("given", "detail"),
    [
        ("abc", "'amount' is not a decimal number."),
        (None, "'amount' must be a number or a decimal string."),
        (Decimal("NaN"), "'amount' must be a finite number."),
        ("-1", "'amount' must be greater than 0."),
        ("1e10", "'amount' must be at most 1000000000.00."),
        ("0.015", "'amount' must have at most 2 decimal places."),
    ],
)
def test_every_rule_an_amount_breaks_is_a_422_whose_detail_names_the_rule(given: object, detail: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_amount(given)
    assert caught.value.status_code == 422
    assert str(caught.value) == detail


def test_the_422_names_the_field_the_caller_checks() -> None:
    with pytest.raises(Unprocessable, match=r"^'deposit' must be greater than 0"):
        parse_amount("0", field="deposit")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (Decimal("5"), "5.00"),
        (Decimal("0.1"), "0.10"),
        (Decimal("1E+2"), "100.00"),
        (Decimal("1E-2"), "0.01"),
        (Decimal("1000000000.00"), "1000000000.00"),
        (Decimal("1E+9"), "1000000000.00"),
    ],
)
def test_an_amount_is_shown_with_two_places_and_never_in_exponent_notation(given: Decimal, expected: str) -> None:
    assert format_amount(given) == expected


@pytest.mark.parametrize("given", ["0.01", "12.30", "999999999.99", "1000000000.00"])
def test_a_shown_amount_parses_back_to_itself(given: str) -> None:
    assert format_amount(parse_amount(format_amount(parse_amount(given)))) == given
