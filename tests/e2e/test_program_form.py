"""The issuer's program form in a real browser, on a desktop (1,280 px) and a phone (390 px): grouped fields, wide
enough inputs, labels that read as words (never a letter per line), no sideways scroll; and a program created from
it stores the percentages typed as ratios; the preview of a sample booking follows what is typed.

Screenshots: program_form_1280.png and program_form_390.png (full page), program_preview_1280.png and
program_preview_390.png (the preview section) in /tmp and test-artifacts/screenshots/, for a person to look at.
"""

import tempfile
from decimal import Decimal as D  # noqa: N817
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import SCREENSHOTS, log_in
from tests.vouchers.factories import VoucherProgramFactory
from vouchers.models import VoucherProgram

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-program-form-1"
MIN_INPUT_WIDTH = 120  # px at 1,280 px
MAX_LABEL_LINES = 3.2
MIN_LABEL_WIDTH = 100  # px: narrower labels wrap a letter or two per line

# What the page looks like, measured in the browser.
MEASURE = """() => {
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const form = document.querySelector("form.program-form");
  const box = el => el.getBoundingClientRect();
  const lineHeight = el => { const cs = getComputedStyle(el); const lh = parseFloat(cs.lineHeight);
                             return isNaN(lh) ? parseFloat(cs.fontSize) * 1.5 : lh; };
  return {
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
    inputs: [...form.querySelectorAll("input, select, textarea")]
      .filter(el => !["checkbox", "radio", "hidden"].includes(el.type) && shown(el))
      .map(el => ({name: el.name, width: box(el).width})),
    labels: [...form.querySelectorAll("label, legend")].filter(shown)
      .map(el => ({text: el.textContent.trim().replace(/\\s+/g, " ").slice(0, 70), width: box(el).width,
                   lines: box(el).height / lineHeight(el)})),
    sections: Object.fromEntries([...form.querySelectorAll("fieldset.form-section")].map(fs => [
      fs.querySelector("legend").textContent.trim(),
      new Set([...fs.querySelectorAll(".form-field")].map(f => Math.round(box(f).left))).size])),
  };
}"""


@pytest.fixture
def issuer_page(live_server, page):
    """An issuer member logged in, with providers and other programs to fill the checkbox lists."""
    issuer = factories.IssuerFactory(city="Hangzhou")
    for _ in range(3):
        factories.ProviderFactory()
    VoucherProgramFactory(name="National compute voucher pilot", level="national")
    VoucherProgramFactory(
        name="Zhejiang provincial AI compute subsidy with a rather long official name", level="provincial"
    )
    user = factories.member_of(issuer)
    user.set_password(PASSWORD)
    user.save()
    log_in(page, user.username, PASSWORD)
    page.issuer = issuer
    return page


def too_narrow(label: dict) -> bool:
    """A label squeezed so narrow that it wraps (a short word on one line, "Caps" or "City", is fine)."""
    return label["width"] < MIN_LABEL_WIDTH and label["lines"] > 1.5


def measure(page, width: int) -> dict:
    """Open the new-program form ``width`` px wide, save full-page screenshots (the system's temp directory and
    test-artifacts/screenshots/) and measure it."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/vouchers/programs/new/")
    page.locator("form.program-form").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for folder in (Path(tempfile.gettempdir()), SCREENSHOTS):
        page.screenshot(path=str(folder / f"program_form_{width}.png"), full_page=True)
    return page.evaluate(MEASURE)


def test_program_form_fits_a_desktop_and_a_phone(issuer_page):
    # when the form is opened on a desktop
    desktop = measure(issuer_page, 1280)
    # then no sideways scroll, inputs wide enough to type in, labels that read as words
    assert desktop["scrollWidth"] <= desktop["innerWidth"]
    narrow = [i for i in desktop["inputs"] if i["width"] < MIN_INPUT_WIDTH]
    assert not narrow, narrow
    assert len(desktop["inputs"]) >= 20
    assert not [label for label in desktop["labels"] if label["lines"] > MAX_LABEL_LINES], desktop["labels"]
    assert not [label for label in desktop["labels"] if too_narrow(label)], desktop["labels"]
    # and each group of fields is two or three columns wide
    assert set(desktop["sections"]) == {"Basics", "Coverage", "Caps", "Stacking", "Eligibility", "Preview"}
    assert 2 <= desktop["sections"]["Basics"] <= 3 and 2 <= desktop["sections"]["Coverage"] <= 3

    # when the form is opened on a phone
    phone = measure(issuer_page, 390)
    # then one column, no sideways scroll, labels still words
    assert phone["scrollWidth"] <= phone["innerWidth"]
    assert all(columns <= 1 for columns in phone["sections"].values()), phone["sections"]
    assert not [label for label in phone["labels"] if label["lines"] > MAX_LABEL_LINES], phone["labels"]
    assert not [label for label in phone["labels"] if too_narrow(label)], phone["labels"]
    assert not [i for i in phone["inputs"] if i["width"] < MIN_INPUT_WIDTH], phone["inputs"]


def test_issuer_creates_a_program_from_the_form(issuer_page, page_errors):
    page = issuer_page
    national = VoucherProgram.objects.get(name="National compute voucher pilot")
    page.goto("/vouchers/programs/new/")
    # when the basics are filled in and the Hangzhou rules typed in percent and ticked
    page.get_by_label("Program name").fill("Hangzhou compute vouchers 2027")
    page.get_by_label("Smallest voucher (CNY)").fill("1000.00")
    page.get_by_label("Largest voucher (CNY)").fill("500000.00")
    page.get_by_label("Applications open · Beijing time (UTC+8)").fill("2027-01-01T00:00")
    page.get_by_label("Applications close · Beijing time (UTC+8)").fill("2027-12-31T00:00")
    page.get_by_label("Share on domestic accelerators (%)").fill("30")
    page.get_by_label("Share on other accelerators (%)").fill("20")
    page.get_by_label("SME contract limit (CNY)").fill("500000.00")
    page.get_by_label("Share for SMEs within that limit (%)").fill("50")
    page.get_by_label("Combined cap for all vouchers (%)").fill("60")
    page.get_by_label("This program's level").select_option("city")
    stacking = page.locator("#section-stacking")
    stacking.get_by_label("City", exact=True).uncheck()
    stacking.get_by_label("National compute voucher pilot", exact=False).check()
    page.locator("#section-eligibility").get_by_label("Hangzhou", exact=True).check()
    page.get_by_label("Subsidy period (days)").fill("365")
    page.get_by_role("button", name="Create program").click()
    # then the program page states the rules in plain words
    expect(page.locator("main")).to_contain_text("all vouchers together pay at most 60 % of a booking")
    expect(page.locator("main")).to_contain_text("no other city-level subsidy")
    program = VoucherProgram.objects.get(name="Hangzhou compute vouchers 2027")
    assert (program.domestic_ratio, program.max_stacked_share, program.sme_contract_ratio) == (
        D("0.3"),
        D("0.6"),
        D("0.5"),
    )
    assert program.city == "Hangzhou" and program.eligible_buyer_cities == ["Hangzhou"]
    assert program.stack_levels == ["national", "provincial", "district"]
    assert list(program.stack_excluded_programs.all()) == [national]
    assert page_errors == []


def test_the_preview_follows_what_is_typed(issuer_page, page_errors):
    page = issuer_page
    page.goto("/vouchers/programs/new/")
    preview = page.locator("#program-preview")
    voucher, cash = preview.locator('[data-preview="voucher"]'), preview.locator('[data-preview="cash"]')
    # when the page opens / then the sample booking (2 nodes × 8 GPUs × 24 h at ¥6.00) gets nothing at 0 %
    expect(preview.locator('[data-preview="subtotal"]')).to_have_text("¥2,304.00")
    expect(voucher).to_have_text("¥0.00")
    # when a share is typed / then the voucher part follows
    page.get_by_label("Share on domestic accelerators (%)").fill("30")
    expect(voucher).to_have_text("¥691.20")
    expect(cash).to_have_text("¥1,612.80")
    # when the sample booking changes / then so does the preview
    page.get_by_label("Nodes", exact=True).fill("4")
    expect(voucher).to_have_text("¥1,382.40")
    page.get_by_label("Chip origin").select_option("imported")
    expect(voucher).to_have_text("¥0.00")
    page.get_by_label("Share on other accelerators (%)").fill("20")
    expect(voucher).to_have_text("¥921.60")
    expect(preview).to_contain_text("Share 20 %.")
    # when a cap per booking is typed / then the preview names it
    page.get_by_label("Cap per booking (CNY)").fill("500")
    expect(voucher).to_have_text("¥500.00")
    expect(preview).to_contain_text("the program's cap for one booking is reached")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator("#section-preview").scroll_into_view_if_needed()
        for folder in (Path(tempfile.gettempdir()), SCREENSHOTS):
            page.locator("#section-preview").screenshot(path=str(folder / f"program_preview_{width}.png"))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # when a share is out of range / then the preview says what to correct, in words
    page.get_by_label("Share on other accelerators (%)").fill("150")
    expect(preview).to_contain_text("Share on other accelerators (%): Enter a percentage between 0 and 100.")
    expect(voucher).to_have_count(0)
    # and nothing was written
    assert not VoucherProgram.objects.filter(issuer=page.issuer).exists()
    assert page_errors == []
