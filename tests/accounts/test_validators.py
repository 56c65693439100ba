import pytest
from django.core.exceptions import ValidationError

from accounts.validators import uscc_check_character, validate_credit_code
from tests.factories import credit_code


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000600037341L", credit_code(7)])
def test_valid_credit_codes_pass(code):
    # given a code with the right check character / when validated / then no error
    validate_credit_code(code)


@pytest.mark.parametrize(
    ("code", "error_code"),
    [
        ("91350100M000100Y4", "length"),  # 17 characters
        ("91350100M000100Y433", "length"),  # 19 characters
        ("", "length"),
        ("91350100M000100I43", "alphabet"),  # I is not in the alphabet
        ("91350100M000100Y44", "checksum"),  # last character off by one
        ("91350100M000100Y4A", "checksum"),
    ],
)
def test_invalid_credit_codes_name_the_problem(code, error_code):
    with pytest.raises(ValidationError) as excinfo:
        validate_credit_code(code)
    assert excinfo.value.code == error_code


def test_every_single_character_change_is_caught():
    # given a valid code
    good = "91350100M000100Y43"
    # when any one of the first 17 characters is replaced by another digit
    for position in range(17):
        for digit in "0123456789":
            if good[position] == digit:
                continue
            bad = good[:position] + digit + good[position + 1 :]
            # then the check character no longer matches
            assert uscc_check_character(bad[:17]) != bad[17], bad
