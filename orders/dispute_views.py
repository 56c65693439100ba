"""Page side of disputes (issue 20): the buyer's dispute form on the booking page and the staff page that lists
disputes and resolves them (``orders.disputes``)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Organization
from accounts.selectors import acting_organization, is_platform_staff
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import service_errors_to_messages
from orders import disputes, selectors


@login_required
@require_POST
def booking_dispute(request, pk: int):
    """The buyer disputes the booking (the button on its page)."""
    booking = selectors.bookings_bought_by(request.user).filter(pk=pk).first()
    if booking is None:
        raise Http404(_("No such booking."))
    acting_organization(request.user, kind=Organization.Kind.STARTUP, organization_id=booking.buyer_id, for_write=True)
    try:
        disputes.dispute_open(booking=booking, actor=request.user, reason=request.POST.get("reason", "")[:2000])
    except ApplicationError as exc:
        service_errors_to_messages(request, exc)
    else:
        messages.success(request, _("Dispute filed: the booking is settled once platform staff resolve it."))
    return redirect("booking-detail", pk=pk)


def _require_staff(request) -> None:
    if not is_platform_staff(request.user):
        raise PermissionDenied(_("Only platform staff resolve disputes."))


@login_required
def dispute_list(request):
    """``/staff/disputes/``: every dispute, open ones first, with the forms that resolve them."""
    _require_staff(request)
    page = Paginator(disputes.disputes_for_review(), 25).get_page(request.GET.get("page"))
    return render(request, "delivery/disputes.html", {"page": page})


@login_required
@require_POST
def dispute_resolve(request, pk: int):
    _require_staff(request)
    try:
        disputes.dispute_resolve(
            dispute=pk,
            actor=request.user,
            decision=request.POST.get("decision", ""),
            amount=request.POST.get("amount") or None,
            note=request.POST.get("note", "")[:2000],
        )
    except ApplicationError as exc:
        service_errors_to_messages(request, exc)
    else:
        messages.success(request, _("Dispute resolved: the credit is paid when the booking is settled."))
    return redirect("staff-disputes")
