"""Voucher pages: programs and apply (startups), the application queue with approve/reject (issuers), my vouchers
with balance/held/spent and redemption history, and the program page with its budget burn-down chart."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import CITY_CHOICES, Organization
from accounts.selectors import acting_organization, acting_organization_for, user_organizations
from marketplace.core.exceptions import ApplicationError
from vouchers import selectors, services
from vouchers.forms import ApplyForm, ApproveForm, ProgramForm, RejectForm, SampleBookingForm, ratio_to_percent
from vouchers.models import Level, VoucherApplication, VoucherProgram

PAGE_SIZE = 20
# Why the program would pay nothing for the preview's sample booking (the eligibility rules a sample can break).
PREVIEW_REFUSALS = {
    "accelerator_not_eligible": gettext_lazy("Nothing: the program does not cover this accelerator."),
    "model_filing_required": gettext_lazy("Nothing: the program requires a registered model filing."),
}
CITY_LABELS = dict(CITY_CHOICES)


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _sample_form(request) -> SampleBookingForm:
    """The preview's sample booking as typed when the program form comes back with errors, else the defaults."""
    typed = any(key.startswith(f"{SampleBookingForm.prefix}-") for key in request.POST)
    return SampleBookingForm(request.POST) if typed else SampleBookingForm()


def _is_startup_member(user) -> bool:
    return user_organizations(user, kind=Organization.Kind.STARTUP).exists()


@login_required
def program_list(request):
    page = _page(request, selectors.programs_visible(request.user).order_by("city", "name"))
    return render(
        request,
        "vouchers/program_list.html",
        {
            "page": page,
            "can_apply": _is_startup_member(request.user),
            "is_issuer": user_organizations(request.user, kind=Organization.Kind.ISSUER).exists(),
        },
    )


@login_required
def program_new(request):
    """``/vouchers/programs/new/``: issuers create a program (a draft unless they choose otherwise); others 403."""
    if not user_organizations(request.user, kind=Organization.Kind.ISSUER).exists():
        raise PermissionDenied(_("Only voucher issuers create programs."))
    if request.method != "POST":
        return render(
            request,
            "vouchers/program_form.html",
            {"form": ProgramForm(user=request.user), "sample_form": SampleBookingForm()},
        )
    form = ProgramForm(request.POST, user=request.user)
    status = 400
    if form.is_valid():
        try:
            program = services.program_create(
                issuer=acting_organization_for(
                    request,
                    Organization.Kind.ISSUER,
                    for_write=True,
                    organization=form.cleaned_data.get("organization"),
                ),
                actor=request.user,
                **form.service_kwargs(),
            )
        except ApplicationError as exc:
            form.add_service_errors(exc)
            status = exc.status
        else:
            messages.success(
                request,
                _("Program “%(name)s” created (%(status)s).")
                % {"name": program.name, "status": program.get_status_display()},
            )
            return redirect("voucher-program-detail", program.pk)
    return render(
        request,
        "vouchers/program_form.html",
        {"form": form, "sample_form": _sample_form(request)},
        status=status,
    )


@login_required
def program_edit(request, pk: int):
    """``/vouchers/programs/<id>/edit/``: the issuer changes rules or status; another issuer's program → 404."""
    program = get_object_or_404(selectors.programs_managed(request.user), pk=pk)
    if request.method != "POST":
        return render(
            request,
            "vouchers/program_form.html",
            {
                "form": ProgramForm(user=request.user, program=program),
                "program": program,
                "sample_form": SampleBookingForm(),
            },
        )
    form = ProgramForm(request.POST, user=request.user, program=program)
    status = 400
    if form.is_valid():
        try:
            services.program_update(program=program, actor=request.user, **form.service_kwargs())
        except ApplicationError as exc:
            form.add_service_errors(exc)
            status = exc.status
        else:
            messages.success(request, _("Rules saved: quotes use them from now on."))
            return redirect("voucher-program-detail", program.pk)
    return render(
        request,
        "vouchers/program_form.html",
        {"form": form, "program": program, "sample_form": _sample_form(request)},
        status=status,
    )


def _preview(request, program: VoucherProgram | None = None):
    """The program form's preview: what the rules typed so far would pay of the sample booking typed below them
    (``vouchers.rules`` through ``selectors.sample_preview``; nothing is written). Errors come back as sentences in
    the fragment (htmx swaps 2xx answers only: 200 for htmx, 400 otherwise)."""
    form = ProgramForm(request.POST, user=request.user, program=program)
    sample_form = SampleBookingForm(request.POST)
    form.is_valid()
    sample_form.is_valid()
    errors = form.preview_errors() + sample_form.preview_errors()
    context = {"errors": errors}
    if not errors:
        face_value_max = form.cleaned_data.get("face_value_max")
        sample = sample_form.sample(face_value_max=face_value_max)
        program_rules = form.preview_rules(program.pk if program else 0)
        preview = selectors.sample_preview(program_rules, sample)
        utilisation = sample.cluster_utilisation_percent
        context.update(
            sample=sample,
            preview=preview,
            share=ratio_to_percent(preview.ratio),
            # the idle-capacity rule's numbers as typed (30 rather than 30.00)
            idle_extra=ratio_to_percent(program_rules.idle_extra_ratio),
            idle_threshold=ratio_to_percent(_percent_ratio(program_rules.idle_threshold_percent)),
            utilisation=ratio_to_percent(_percent_ratio(utilisation)),
            refusal=PREVIEW_REFUSALS.get(preview.refused_by, _("Nothing: the program would not pay for this booking.")),
        )
    status = 400 if errors and not request.htmx else 200
    return render(request, "vouchers/_program_preview.html", context, status=status)


def _percent_ratio(percent):
    return None if percent is None else percent / 100


@login_required
@require_POST
def program_new_preview(request):
    """``POST /vouchers/programs/new/preview/``: the preview on the new-program form; issuers only (403)."""
    if not user_organizations(request.user, kind=Organization.Kind.ISSUER).exists():
        raise PermissionDenied(_("Only voucher issuers create programs."))
    return _preview(request)


@login_required
@require_POST
def program_edit_preview(request, pk: int):
    """``POST /vouchers/programs/<id>/preview/``: the preview on the edit form; another issuer's program → 404."""
    return _preview(request, get_object_or_404(selectors.programs_managed(request.user), pk=pk))


def _join(words: list[str], last: str = "and") -> str:
    """["a", "b", "c"] → "a, b and c" (in the active language; ``last`` is "and" or "or")."""
    words = [str(word) for word in words]
    if len(words) < 2:
        return "".join(words)
    pattern = _("%(items)s and %(last)s") if last == "and" else _("%(items)s or %(last)s")
    return pattern % {"items": _(", ").join(words[:-1]), "last": words[-1]}


def _stacking_text(program: VoucherProgram) -> str:
    """Which other programs' vouchers may pay in the same booking, by level, in plain words."""
    allowed = [level for level in Level.values if level in program.stack_levels]
    if not allowed:
        return _("Never combined with another program's vouchers in one booking.")
    if len(allowed) == len(Level.values):
        return _("May be combined with vouchers of programs at any level.")
    refused = [Level(level).label.lower() for level in Level.values if level not in allowed]
    return _(
        "May be combined only with vouchers of %(allowed)s-level programs (no other %(refused)s-level subsidy)."
    ) % {"allowed": _join([Level(level).label.lower() for level in allowed]), "refused": _join(refused, "or")}


def _rules_context(request, program: VoucherProgram) -> dict:
    """The program's rules as the page words them: percentages and the programs it is never combined with (only
    those the viewer may see)."""
    percent = {name: ratio_to_percent(getattr(program, name)) for name in ProgramForm.PERCENT_FIELDS}
    percent["idle_extra_ratio"] = ratio_to_percent(program.idle_extra_ratio)
    return {
        "percent": percent,
        "combined_cap": program.max_stacked_share < 1,
        "stacking_text": _stacking_text(program),
        "excluded_programs": program.stack_excluded_programs.filter(
            pk__in=selectors.programs_visible(request.user).values("pk")
        ).order_by("city", "name"),
        "buyer_cities": _join([CITY_LABELS.get(city, city) for city in program.eligible_buyer_cities], "or"),
    }


@login_required
def program_detail(request, pk: int):
    """The program's rules; the apply form for startups; budget and burn-down chart for its issuer."""
    program = get_object_or_404(selectors.programs_visible(request.user), pk=pk)
    manages = selectors.programs_managed(request.user).filter(pk=pk).exists()
    context = {
        "program": program,
        "manages": manages,
        "can_apply": _is_startup_member(request.user),
        "form": ApplyForm(user=request.user, initial={"requested_amount": program.face_value_min}),
        **_rules_context(request, program),
    }
    if manages:
        context["burndown"] = selectors.program_burndown(program)
        context["pending"] = program.applications.filter(status=VoucherApplication.Status.SUBMITTED).count()
    return render(request, "vouchers/program_detail.html", context)


@login_required
@require_POST
def program_apply(request, pk: int):
    """POST the apply form; htmx gets the form back with errors in place (400/403/409), or a redirect."""
    program = get_object_or_404(selectors.programs_visible(request.user), pk=pk)
    form = ApplyForm(request.POST, user=request.user)
    status = 400
    if form.is_valid():
        chosen = form.cleaned_data["organization"]
        try:
            applicant = acting_organization(
                request.user,
                kind=Organization.Kind.STARTUP,
                for_write=True,
                organization_id=chosen.pk if chosen else None,
            )
            services.application_submit(
                program=program,
                applicant=applicant,
                actor=request.user,
                requested_amount=form.cleaned_data["requested_amount"],
                purpose=form.cleaned_data["purpose"],
                model_filing=form.cleaned_data["model_filing"],
            )
        except ApplicationError as exc:
            form.add_service_errors(exc)
            status = exc.status
        else:
            messages.success(
                request,
                _("Application sent to %(issuer)s. You will see the decision under Applications.")
                % {"issuer": program.issuer.name},
            )
            if request.htmx:
                response = render(request, "vouchers/_apply_form.html", {"program": program, "form": None})
                response["HX-Redirect"] = "/vouchers/applications/"
                return response
            return redirect("voucher-application-queue")
    if request.htmx:  # htmx swaps 2xx answers only: the form comes back with its errors in place
        return render(request, "vouchers/_apply_form.html", {"program": program, "form": form})
    return render(
        request,
        "vouchers/program_detail.html",
        {"program": program, "form": form, "can_apply": True, **_rules_context(request, program)},
        status=status,
    )


@login_required
def application_queue(request):
    """Issuers: their programs' applications (submitted first). Startups: their own applications."""
    status_filter = request.GET.get("status", "")
    qs = selectors.applications_visible(request.user).order_by("-status", "-created_at", "-id")
    if status_filter in VoucherApplication.Status.values:
        qs = qs.filter(status=status_filter)
    managed_ids = set(selectors.programs_managed(request.user).values_list("pk", flat=True))
    return render(
        request,
        "vouchers/application_queue.html",
        {
            "page": _page(request, qs),
            "managed_ids": managed_ids,
            "status_filter": status_filter,
            "statuses": VoucherApplication.Status.choices,
        },
    )


@login_required
def application_detail(request, pk: int):
    """One application with everything an issuer decides on: the whole purpose, the applicant (city, SME, legal
    representative, owners, verification), its model filings, and its other applications and vouchers in the
    programs the viewer can see; the approve and reject forms ask before they act. 404 unless the application is
    the viewer's organization's or in a program their issuer runs."""
    application = get_object_or_404(selectors.applications_visible(request.user), pk=pk)
    applicant = application.applicant
    vouchers = list(selectors.vouchers_visible(request.user).filter(holder=applicant).order_by("-issued_at", "-id"))
    balances = selectors.voucher_balances([voucher.pk for voucher in vouchers])
    others = selectors.applications_visible(request.user).filter(applicant=applicant).exclude(pk=application.pk)
    managed = selectors.programs_managed(request.user).filter(pk=application.program_id).exists()
    return render(
        request,
        "vouchers/application_detail.html",
        {
            "application": application,
            "applicant": applicant,
            "filings": applicant.model_filings.order_by("-registered_on", "-id"),
            "vouchers": [(voucher, balances[voucher.pk]) for voucher in vouchers],
            "other_applications": others.order_by("-created_at", "-id")[:20],
            "can_decide": managed and bool(application.available_statuses()),
        },
    )


def _decide(request, pk: int, form_class, decide):
    """Approve or reject; htmx swaps the queue row (with the errors in place), a plain POST redirects back."""
    application = get_object_or_404(selectors.applications_for_issuer(request.user), pk=pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            decide(application, form.cleaned_data)
        except ApplicationError as exc:
            form.add_service_errors(exc)
    application.refresh_from_db()
    if not request.htmx:
        if form.errors:
            messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        else:
            messages.success(
                request,
                _("Application %(id)s %(status)s.")
                % {"id": application.pk, "status": application.get_status_display().lower()},
            )
        return redirect("voucher-application-queue")
    # htmx swaps 2xx answers only: the errors travel in the row.
    return render(
        request,
        "vouchers/_application_row.html",
        {"application": application, "managed_ids": {application.program_id}, "form_errors": form.errors},
    )


@login_required
@require_POST
def application_approve(request, pk: int):
    return _decide(
        request,
        pk,
        ApproveForm,
        lambda application, data: services.application_approve(
            application=application, face_value=data["face_value"], actor=request.user
        ),
    )


@login_required
@require_POST
def application_reject(request, pk: int):
    return _decide(
        request,
        pk,
        RejectForm,
        lambda application, data: services.application_reject(
            application=application, reason=data["reason"], actor=request.user
        ),
    )


@login_required
def voucher_list(request):
    page = _page(request, selectors.vouchers_visible(request.user))
    balances = selectors.voucher_balances(v.pk for v in page)
    rows = [(voucher, balances[voucher.pk]) for voucher in page]
    return render(request, "vouchers/voucher_list.html", {"page": page, "rows": rows})


@login_required
def voucher_detail(request, pk: int):
    voucher = get_object_or_404(selectors.vouchers_visible(request.user), pk=pk)
    return render(
        request,
        "vouchers/voucher_detail.html",
        {
            "voucher": voucher,
            "amounts": selectors.voucher_balances([voucher.pk])[voucher.pk],
            "page": _page(request, voucher.redemptions.select_related("booking").order_by("-created_at", "-id")),
        },
    )
