"""Pages: a booking's progress and money movements, payouts for providers (platform staff record their transfers),
claims and statements to pay for issuers."""

import csv

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Organization
from accounts.selectors import audited_issuers, has_org_kind, is_auditor, is_platform_staff
from marketplace.core.exceptions import ApplicationError
from marketplace.core.money import ZERO
from marketplace.core.spreadsheet import safe_cell
from settlement import payout_services, selectors
from settlement.models import Payout, ReimbursementClaim, ReimbursementStatement

PER_PAGE = 25


def _error_of(action) -> str | None:
    """Run a service call; its ``ApplicationError`` (a claim listed on a statement, a payable short of its payout,
    …) comes back as the message the page shows in place, since htmx swaps 2xx answers only. None on success."""
    try:
        action()
    except ApplicationError as exc:
        return exc.message
    return None


def _back_with_outcome(request, error: str | None, success: str, to: str, *args):
    """The answer to a plain (non-htmx) POST: its outcome as a flash message, then a redirect to ``to``."""
    if error:
        messages.error(request, error)
    else:
        messages.success(request, success)
    return redirect(to, *args)


@login_required
def booking_progress(request, booking_id):
    try:
        booking = selectors.booking_for_progress(request.user, booking_id)
    except ApplicationError:
        raise Http404(_("No such booking.")) from None
    movements = list(selectors.booking_movements(booking.pk))
    selectors.name_accounts(movements, viewer=request.user)
    return render(
        request,
        "settlement/booking_progress.html",
        {
            "booking": booking,
            "movements": movements,
            "settlement": booking.settlement_record,
            "claims": list(booking.reimbursement_claims.select_related("program")),
        },
    )


@login_required
def payout_list(request):
    """A provider's payouts; every provider's for platform staff, with a button to record each transfer."""
    if not selectors.can_read_payouts(request.user):
        raise PermissionDenied(_("Only provider members and platform staff read payouts."))
    status = request.GET.get("status") or ""
    payouts = selectors.payouts_visible_to(
        request.user, status=status if status in Payout.Status.values else None
    ).prefetch_related("settlements")
    page = Paginator(payouts, PER_PAGE).get_page(request.GET.get("page"))
    unpaid = selectors.unpaid_settlements(request.user).aggregate(total=Sum("provider_amount"))["total"] or ZERO
    template = "settlement/_payouts.html" if request.htmx else "settlement/payouts.html"
    return render(
        request,
        template,
        {
            "page": page,
            "unpaid": unpaid,
            "status": status,
            "statuses": Payout.Status.choices,
            "staff": is_platform_staff(request.user),
        },
    )


@login_required
@require_POST
def payout_mark_paid(request, pk):
    """Platform staff record a payout's bank transfer. htmx swaps the row (errors shown in it); a plain POST
    redirects to the payouts page."""
    if not is_platform_staff(request.user):
        raise PermissionDenied(_("Only platform staff record payout transfers."))
    payout = get_object_or_404(selectors.payouts_visible_to(request.user), pk=pk)
    error = _error_of(lambda: payout_services.payout_mark_paid(payout=payout, actor=request.user))
    if not request.htmx:
        return _back_with_outcome(request, error, _("Payout #%(id)s marked paid.") % {"id": payout.pk}, "payout-list")
    payout = selectors.payouts_visible_to(request.user).prefetch_related("settlements").get(pk=payout.pk)
    return render(request, "settlement/_payout_row.html", {"payout": payout, "staff": True, "error": error})


@login_required
def claim_list(request):
    if not has_org_kind(request.user, Organization.Kind.ISSUER):
        raise PermissionDenied(_("Only voucher issuer members read reimbursement claims."))
    status = request.GET.get("status") or ""
    claims = selectors.claims_visible_to(
        request.user, status=status if status in ReimbursementClaim.Status.values else None
    )
    page = Paginator(claims, PER_PAGE).get_page(request.GET.get("page"))
    open_total = (
        selectors.claims_visible_to(request.user, status="open").aggregate(total=Sum("amount"))["total"] or ZERO
    )
    template = "settlement/_claims.html" if request.htmx else "settlement/claims.html"
    return render(
        request,
        template,
        {"page": page, "status": status, "statuses": ReimbursementClaim.Status.choices, "open_total": open_total},
    )


@login_required
@require_POST
def claim_mark_paid(request, pk):
    claim = get_object_or_404(selectors.claims_visible_to(request.user), pk=pk)
    error = _error_of(lambda: payout_services.claim_mark_paid(claim=claim, actor=request.user))
    claim.refresh_from_db()
    return render(request, "settlement/_claim_row.html", {"claim": claim, "error": error})


def _statement_readable(request) -> None:
    if not selectors.can_read_statements(request.user):
        raise PermissionDenied(_("Only voucher issuers, platform staff and auditors read reimbursement statements."))


def _statement_or_404(request, pk) -> ReimbursementStatement:
    _statement_readable(request)
    try:
        return selectors.statement_for(request.user, pk)
    except ApplicationError:
        raise Http404(_("No such statement.")) from None


@login_required
def statement_list(request):
    _statement_readable(request)
    status = request.GET.get("status") or ""
    statements = selectors.statements_visible_to(
        request.user, status=status if status in ReimbursementStatement.Status.values else None
    )
    page = Paginator(statements, PER_PAGE).get_page(request.GET.get("page"))
    due = (
        selectors.statements_visible_to(request.user, status=ReimbursementStatement.Status.ISSUED).aggregate(
            total=Sum("total")
        )["total"]
        or ZERO
    )
    template = "settlement/_statements.html" if request.htmx else "settlement/statements.html"
    return render(
        request,
        template,
        {"page": page, "status": status, "statuses": ReimbursementStatement.Status.choices, "due": due},
    )


def _audit_export_url(statement: ReimbursementStatement) -> str:
    """The audit export (``export.json``: the lines' voucher spend events with their inclusion proofs, verified offline
    by ``python -m audit.verify``) of the statement's lines."""
    return f"{reverse('api-audit-export')}?statement={statement.pk}"


def _detail_context(request, statement: ReimbursementStatement) -> dict:
    user = request.user
    return {
        "statement": statement,
        "lines": list(selectors.statement_lines(statement)),
        "can_pay": selectors.can_pay_statement(user, statement),
        # the export is for those who read audit data: auditors and the issuer's members (not all platform staff)
        "audit_export_url": _audit_export_url(statement)
        if is_auditor(user) or audited_issuers(user).exists()
        else None,
    }


@login_required
def statement_detail(request, pk):
    statement = _statement_or_404(request, pk)
    return render(request, "settlement/statement_detail.html", _detail_context(request, statement))


STATEMENT_CSV_COLUMNS = [
    "statement",
    "program",
    "period_start",
    "period_end",
    "claim",
    "booking",
    "booking_start",
    "booking_end",
    "provider",
    "startup",
    "amount",
    "currency",
    "claim_status",
]


@login_required
def statement_csv(request, pk):
    """The statement's lines as a CSV attachment, one row per claim (the statement total is their sum); its ``Link``
    header names the audit export of the same lines, with proofs."""
    statement = _statement_or_404(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="statement-{statement.pk}.csv"'
    response["Link"] = f'<{_audit_export_url(statement)}>; rel="alternate"; type="application/json"'
    writer = csv.writer(response)
    writer.writerow(STATEMENT_CSV_COLUMNS)
    for claim in selectors.statement_lines(statement):
        booking = claim.booking
        writer.writerow(
            [
                safe_cell(v)
                for v in (
                    statement.pk,
                    statement.program.name,
                    statement.period_start.isoformat(),
                    statement.period_end.isoformat(),
                    claim.pk,
                    booking.pk,
                    booking.start.isoformat(),
                    booking.end.isoformat(),
                    booking.listing.cluster.data_center.provider.name,
                    booking.buyer.name,
                    claim.amount,
                    settings.PLATFORM_CURRENCY,
                    claim.status,
                )
            ]
        )
    return response


@login_required
@require_POST
def statement_pay(request, pk):
    """Mark the statement paid. htmx swaps the statement (errors shown in it); a plain POST redirects to it."""
    statement = _statement_or_404(request, pk)
    if not selectors.can_pay_statement(request.user, statement):
        raise PermissionDenied(_("Only the program's issuer or platform staff can mark a statement paid."))
    error = _error_of(lambda: payout_services.statement_mark_paid(statement=statement, actor=request.user))
    if not request.htmx:
        return _back_with_outcome(
            request, error, _("Statement #%(id)s marked paid.") % {"id": statement.pk}, "statement-detail", statement.pk
        )
    statement = selectors.statement_for(request.user, statement.pk)
    return render(request, "settlement/_statement.html", {**_detail_context(request, statement), "error": error})
