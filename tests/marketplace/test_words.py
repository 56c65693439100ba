"""Plain words for stored codes: ledger references and transaction kinds, in the active language."""

from django.utils import translation

from marketplace.core.templatetags.words import ledger_reference, tx_kind
from tests.marketplace.test_i18n import compile_catalog


def test_a_ledger_reference_reads_as_words_in_both_languages():
    compile_catalog()
    with translation.override("en"):
        assert ledger_reference("booking:12") == "Booking 12"
        assert ledger_reference("bank:ICBC-2026-0001") == "Bank transfer ICBC-2026-0001"
        assert ledger_reference("something-else") == "something-else"
        assert tx_kind("service_credit") == "Service credit"
    with translation.override("zh-hans"):
        assert ledger_reference("booking:12") == "预订 12"
        assert tx_kind("resale") == "转售已预订时段"
