"""Pages: the wallet for startup members (balance, held amount, paginated entry history; htmx swaps the table) and
the deposits platform staff record when a bank transfer arrives.

Like ``api.py``, this web layer may import ``accounts``; ledger models, services and selectors never do.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts.models import Organization
from accounts.selectors import is_platform_staff, user_organizations
from ledger import selectors
from ledger.deposits import BANK_REFERENCE_PREFIX, deposit_record
from ledger.forms import DepositForm
from marketplace.core.exceptions import ApplicationError
from marketplace.core.requests import client_ip

ENTRIES_PER_PAGE = 25


@login_required
def wallet(request):
    organizations = list(user_organizations(request.user, kind=Organization.Kind.STARTUP))
    if not organizations:
        return render(request, "ledger/wallet.html", {"organizations": []}, status=403)
    chosen = request.GET.get("organization")
    organization = next((org for org in organizations if str(org.pk) == chosen), organizations[0])
    page = Paginator(selectors.wallet_entries(organization.pk), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "organizations": organizations,
        "organization": organization,
        "page": page,
        **selectors.wallet_summary(organization.pk),
    }
    template = "ledger/_entries.html" if request.htmx else "ledger/wallet.html"
    return render(request, template, context)


@login_required
def deposits(request):
    """``/deposits/``, platform staff only: record a bank transfer into a startup's wallet (the same write as
    ``POST /api/v1/wallet/deposits/``), and the transfers recorded so far, newest first."""
    if not is_platform_staff(request.user):
        raise PermissionDenied(_("Only platform staff record deposits."))
    form = DepositForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _recorded(request, form):
        return redirect("deposit-list")
    page = Paginator(selectors.deposits_recorded(), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    names = dict(
        Organization.objects.filter(pk__in={entry.account.owner_id for entry in page.object_list}).values_list(
            "pk", "name"
        )
    )
    for entry in page.object_list:
        entry.startup_name = names.get(entry.account.owner_id, "")
        entry.bank_reference = entry.transaction.reference.removeprefix(BANK_REFERENCE_PREFIX)
    template = "ledger/_deposits.html" if request.htmx else "ledger/deposits.html"
    return render(request, template, {"form": form, "page": page}, status=400 if form.errors else 200)


def _recorded(request, form: DepositForm) -> bool:
    """Record the form's transfer and say so in a message (True); a refusal goes on the form (False)."""
    data = form.cleaned_data
    try:
        posted = deposit_record(
            organization_id=data["organization"].pk,
            amount=data["amount"],
            reference=data["reference"],
            actor=request.user,
            ip=client_ip(request),
        )
    except ApplicationError as exc:
        form.add_service_errors(exc)
        return False
    messages.success(
        request,
        _("Transfer %(reference)s was already recorded: nothing changed.") % {"reference": data["reference"]}
        if posted.replayed
        else _("Recorded %(amount)s %(currency)s from %(startup)s.")
        % {"amount": data["amount"], "currency": settings.PLATFORM_CURRENCY, "startup": data["organization"].name},
    )
    return True
