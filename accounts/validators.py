"""Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters, the last a check character."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, …


def uscc_check_character(first17: str) -> str:
    """The check character for the first 17 characters of a credit code. Raises ``ValueError`` on a bad character."""
    total = sum(USCC_ALPHABET.index(ch) * weight for ch, weight in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(value: str) -> None:
    """Raise ``ValidationError`` unless ``value`` is 18 valid characters whose last one is the right check character."""
    code = (value or "").strip().upper()
    if len(code) != 18:
        raise ValidationError(gettext("A unified social credit code has 18 characters."), code="length")
    if any(ch not in USCC_ALPHABET for ch in code):
        raise ValidationError(
            gettext("A unified social credit code uses digits and capital letters except I, O, S, V and Z."),
            code="alphabet",
        )
    if uscc_check_character(code[:17]) != code[17]:
        raise ValidationError(
            gettext("The check character of this unified social credit code is wrong."), code="checksum"
        )
