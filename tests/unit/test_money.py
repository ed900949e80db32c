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
