"""The wallet page for startup members: balance, held amount, paginated entry history (htmx swaps the table).

Like ``api.py``, this web layer may import ``accounts``; ledger models, services and selectors never do.
"""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from accounts.models import Organization
from accounts.selectors import user_organizations
from ledger import selectors

ENTRIES_PER_PAGE = 25


@login_required
def wallet(request):
    organizations = list(user_organizations(request.user, kind=Organization.Kind.STARTUP))
    if not organizations:
        return render(request, "ledger/wallet.html", {"organizations": []}, status=403)
    chosen = request.GET.get("organization")
    organization = next((org for org in organizations if str(org.pk) == chosen), organizations[0])
    page = Paginator(selectors.wallet_entries(organization.pk), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"organizations": organizations, "organization": organization, "page": page,
               **selectors.wallet_summary(organization.pk)}
    template = "ledger/_entries.html" if request.htmx else "ledger/wallet.html"
    return render(request, template, context)
