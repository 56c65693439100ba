"""Pages: a booking's progress and money movements, payouts for providers, claims to pay for issuers."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_POST

from marketplace.core.exceptions import ApplicationError
from marketplace.core.money import ZERO
from settlement import selectors, services

PER_PAGE = 25


@login_required
def booking_progress(request, booking_id):
    try:
        booking = selectors.booking_for_progress(request.user, booking_id)
    except ApplicationError:
        raise Http404("No such booking.") from None
    movements = list(selectors.booking_movements(booking.pk))
    return render(request, "settlement/booking_progress.html",
                  {"booking": booking, "movements": movements, "settlement": booking.settlement_record,
                   "claims": list(booking.reimbursement_claims.select_related("program"))})


@login_required
def payout_list(request):
    payouts = selectors.payouts_visible_to(request.user).prefetch_related("settlements")
    page = Paginator(payouts, PER_PAGE).get_page(request.GET.get("page"))
    unpaid = selectors.unpaid_settlements(request.user).aggregate(total=Sum("provider_amount"))["total"] or ZERO
    template = "settlement/_payouts.html" if request.htmx else "settlement/payouts.html"
    return render(request, template, {"page": page, "unpaid": unpaid})


@login_required
def claim_list(request):
    status = request.GET.get("status") or ""
    claims = selectors.claims_visible_to(request.user, status=status if status in ("open", "paid") else None)
    page = Paginator(claims, PER_PAGE).get_page(request.GET.get("page"))
    open_total = (selectors.claims_visible_to(request.user, status="open")
                  .aggregate(total=Sum("amount"))["total"] or ZERO)
    template = "settlement/_claims.html" if request.htmx else "settlement/claims.html"
    return render(request, template, {"page": page, "status": status, "open_total": open_total})


@login_required
@require_POST
def claim_mark_paid(request, pk):
    claim = selectors.claims_visible_to(request.user).filter(pk=pk).first()
    if claim is None:
        raise Http404("No such claim.")
    claim = services.claim_mark_paid(claim=claim, actor=request.user)
    return render(request, "settlement/_claim_row.html", {"claim": claim})
