"""Pages: browse listings (htmx swaps the results), listing detail with an availability timeline, the provider's
clusters and listings, and the platform review queue."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import selectors as account_selectors
from accounts.models import Organization
from listings import selectors, services
from listings.filters import BrowseFilterSet
from listings.forms import ClusterForm, DataCenterForm, ListingEditForm, ListingForm, ReviewForm
from listings.models import Listing
from marketplace.core.exceptions import ApplicationError

PAGE_SIZE = 20


# Parameters that choose how results show, not which: not counted as filters set on a phone's folded filter panel.
UNCOUNTED_PARAMETERS = {"ordering"}


def browse(request, *, filterset_class=BrowseFilterSet, search=None, decorate=None):
    """``/listings/``: the search form and the results; an htmx request gets only the results partial.

    Hooks for a higher layer, so it can extend this page without listings importing it (listings sits below
    vouchers and orders; ``orders.search.browse`` adds net prices after the buyer's vouchers this way):
    ``filterset_class`` — a ``BrowseFilterSet`` subclass with more parameters (built with ``request=``);
    ``search(filters, user)`` — replaces ``selectors.listing_search``: any sequence of listings, in the order to
    show; ``decorate(rows, filters) -> dict`` — called with the page's rows (``selectors.listing_rows``), may set
    attributes on them and returns extra template context. Either may raise ``ApplicationError``: its field errors
    are shown on the form.
    """
    params = filterset_class(request.GET or None, request=request)
    valid = not params.is_bound or params.is_valid()
    filters = params.cleaned() if params.is_bound and valid else {}
    search = search or selectors.listing_search
    extra: dict = {}
    try:
        listings = search(filters=filters, user=request.user) if valid else Listing.objects.none()
        page = Paginator(listings, PAGE_SIZE).get_page(request.GET.get("page"))
        page.object_list = selectors.listing_rows(page.object_list, start=filters.get("start"), end=filters.get("end"))
        if decorate is not None:
            extra = decorate(page.object_list, filters) or {}
    except ApplicationError as exc:
        for field, errors in (exc.errors or {"__all__": [exc.message]}).items():
            for error in errors:
                params.form.add_error(field if field in params.form.fields else None, error)
        page = Paginator(Listing.objects.none(), PAGE_SIZE).get_page(1)
    context = {
        "form": params.form,
        "page": page,
        "window": bool(filters.get("start")),
        "filters_set": sum(1 for name in filters if name not in UNCOUNTED_PARAMETERS),
        **extra,
    }
    if request.htmx:
        return render(request, "listings/_results.html", context)
    context["is_provider"] = account_selectors.has_org_kind(request.user, Organization.Kind.PROVIDER)
    context["is_staff"] = account_selectors.is_platform_staff(request.user)
    return render(request, "listings/browse.html", context)


def detail(request, pk: int):
    """``/listings/<id>/``: terms, capacity and free nodes per day for the next 14 days."""
    try:
        listing = selectors.listing_for_user(pk, request.user)
    except Listing.DoesNotExist:
        raise Http404(_("No such listing.")) from None
    timeline = selectors.listing_daily_availability(listing, days=14)
    return render(request, "listings/detail.html", {"listing": listing, "timeline": timeline})


def _provider_page(request, provider: Organization, *, status: int = 200, **forms):
    data_centers = selectors.provider_data_centers(request.user).filter(provider=provider)
    clusters = selectors.provider_clusters(request.user).filter(data_center__provider=provider)
    utilisation = selectors.cluster_utilisation(clusters, days=14)  # evaluates ``clusters`` once for the page too
    context = {
        "provider": provider,
        "data_centers": data_centers,
        "clusters": clusters,
        "utilisation_chart": selectors.utilisation_chart(utilisation) if utilisation else None,
        "listings": selectors.provider_listings(request.user)
        .filter(cluster__data_center__provider=provider)
        .order_by("-created_at", "-id"),
        "data_center_form": forms.get("data_center_form") or DataCenterForm(),
        "cluster_form": forms.get("cluster_form") or ClusterForm(data_centers=data_centers),
        "listing_form": forms.get("listing_form") or ListingForm(clusters=clusters),
    }
    return render(request, "listings/provider.html", context, status=status)


@login_required
def provider_home(request):
    """``/provider/``: my data centres, clusters and listings, with the forms to add them."""
    return _provider_page(request, account_selectors.acting_organization_for(request, Organization.Kind.PROVIDER))


def _create(request, provider: Organization, form, form_name: str, success: str, service, /, **extra):
    """Validate ``form``; call ``service(**cleaned, **extra)``; errors are shown in place (400), else redirect."""
    if form.is_valid():
        kwargs = form.service_kwargs() if hasattr(form, "service_kwargs") else dict(form.cleaned_data)
        try:
            service(actor=request.user, **kwargs, **extra)
        except ApplicationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, success)
            return redirect("listings-provider")
    return _provider_page(request, provider, status=400, **{form_name: form})


@login_required
@require_POST
def data_center_new(request):
    provider = account_selectors.acting_organization_for(request, Organization.Kind.PROVIDER, for_write=True)
    return _create(
        request,
        provider,
        DataCenterForm(request.POST),
        "data_center_form",
        _("Data centre added."),
        services.data_center_create,
        provider=provider,
    )


@login_required
@require_POST
def cluster_new(request):
    provider = account_selectors.acting_organization_for(request, Organization.Kind.PROVIDER, for_write=True)
    form = ClusterForm(
        request.POST, data_centers=selectors.provider_data_centers(request.user).filter(provider=provider)
    )
    return _create(request, provider, form, "cluster_form", _("Cluster added with its nodes."), services.cluster_create)


@login_required
@require_POST
def listing_new(request):
    provider = account_selectors.acting_organization_for(request, Organization.Kind.PROVIDER, for_write=True)
    form = ListingForm(
        request.POST, clusters=selectors.provider_clusters(request.user).filter(data_center__provider=provider)
    )
    return _create(
        request,
        provider,
        form,
        "listing_form",
        _("Draft listing created: submit it for review when ready."),
        services.listing_create,
        provider=provider,
    )


@login_required
def listing_edit(request, pk: int):
    """``/provider/listings/<id>/edit/``: change the price, window or minimum hours of an own draft, rejected or
    paused listing (``services.listing_update``; an active one must be paused first: 409 shown on the form)."""
    try:
        listing = selectors.provider_listings(request.user).get(pk=pk)
    except Listing.DoesNotExist:
        raise Http404(_("No such listing of yours.")) from None
    if request.method != "POST":
        form = ListingEditForm(initial={name: getattr(listing, name) for name in ListingEditForm.base_fields})
        return render(request, "listings/listing_edit.html", {"listing": listing, "form": form})
    form = ListingEditForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            services.listing_update(listing=listing, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_service_errors(exc)
            status = exc.status
        else:
            messages.success(request, _("Listing %(id)s updated.") % {"id": listing.pk})
            return redirect("listings-provider")
    return render(request, "listings/listing_edit.html", {"listing": listing, "form": form}, status=status)


LISTING_ACTIONS = {
    "submit": (services.listing_submit, gettext_lazy("Submitted for review.")),
    "pause": (services.listing_pause, gettext_lazy("Paused.")),
    "resume": (services.listing_resume, gettext_lazy("Resumed.")),
}


@login_required
@require_POST
def listing_action(request, pk: int, action: str):
    """Submit / pause / resume one of my listings (another provider's → 404)."""
    if action not in LISTING_ACTIONS:
        raise Http404(_("No such action."))
    listing = get_object_or_404(selectors.provider_listings(request.user), pk=pk)
    service, success = LISTING_ACTIONS[action]
    try:
        service(listing=listing, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, _("Listing %(id)s: %(message)s") % {"id": pk, "message": exc.message})
    else:
        messages.success(request, _("Listing %(id)s: %(message)s") % {"id": pk, "message": success})
    return redirect("listings-provider")


def _require_staff(request):
    if not account_selectors.is_platform_staff(request.user):
        raise PermissionDenied(_("Only platform staff review listings."))


@login_required
def review_queue(request):
    """``/review/``: listings pending review, with the provenance declaration of export-controlled clusters."""
    _require_staff(request)
    page = Paginator(selectors.review_queue(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "listings/review.html", {"page": page, "form": ReviewForm()})


@login_required
@require_POST
def review_decide(request, pk: int):
    _require_staff(request)
    listing = get_object_or_404(Listing.objects.all(), pk=pk)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            services.listing_review(listing=listing, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            details = [str(m) for msgs in exc.errors.values() for m in msgs]
            messages.error(
                request,
                _("Listing %(id)s: %(message)s") % {"id": pk, "message": " ".join([str(exc.message), *details])},
            )
        else:
            done = _("approved") if form.cleaned_data["decision"] == "approve" else _("rejected")
            messages.success(request, _("Listing %(id)s: %(message)s.") % {"id": pk, "message": done})
    else:
        messages.error(request, _("Listing %(id)s: choose approve or reject.") % {"id": pk})
    return redirect("listings-review")
