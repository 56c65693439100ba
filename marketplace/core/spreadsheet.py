"""CSV downloads that are safe to open in a spreadsheet."""

from __future__ import annotations

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> object:
    """``value`` for a CSV row: text that a spreadsheet would run as a formula (names, notes: whatever users typed)
    gets a leading apostrophe, so it shows as text; ``None`` becomes empty; numbers, decimals and dates stay as they
    are (a negative amount is a number, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
