"""Account pages: the login page with failed-attempt throttling, sign-up and e-mail confirmation, the staff's
verification queue, and teams (members, invitations)."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.forms.utils import ErrorDict
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import emails, filing_services, selectors, services, throttling, two_factor
from accounts.forms import InvitationSignupForm, InviteForm, ModelFilingForm, RejectForm, SignupForm
from accounts.models import Membership, ModelFiling, Organization, VerificationStatus
from marketplace.core.exceptions import ApplicationError
from marketplace.core.requests import client_ip


class ThrottledLoginView(auth_views.LoginView):
    """Django's LoginView that refuses a (username, IP) pair after too many failures: the form shows why, 429."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        ip = client_ip(request)
        if throttling.login_blocked(username=username, ip=ip):
            # An unbound form: validating the posted one would check the password, which is what is refused.
            form = self.get_form_class()(request=request, initial={"username": username})
            form.cleaned_data, form._errors = {}, ErrorDict()
            form.add_error(None, throttling.BLOCKED_MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.get_user()
        if not two_factor.needs_code(user):
            throttling.login_succeeded(username=user.get_username(), ip=client_ip(self.request))
            return super().form_valid(form)
        # The password was right; the failures are cleared only once the code is (accounts.two_factor_views), so
        # the limit covers both factors. Until then the session reaches the code or set-up page only.
        response = super().form_valid(form)
        target = "two-factor-verify" if two_factor.confirmed_device(user) else "two-factor-setup"
        return redirect(f"{reverse(target)}?{urlencode({'next': response.url})}")

    def form_invalid(self, form):
        throttling.login_failed(username=self.request.POST.get("username", ""), ip=client_ip(self.request))
        return super().form_invalid(form)


# --- sign-up and e-mail confirmation -------------------------------------------------------------------------------


def signup(request):
    """``/signup/``: a startup or compute provider signs up with its first owner; then the e-mail link, then staff
    verification. Errors are shown next to the fields (400) and nothing is written."""
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.signup(**form.service_kwargs(), base_url=emails.site_url(request), ip=client_ip(request))
            except ApplicationError as exc:
                form.add_service_errors(exc)
            else:
                request.session["signup_email"] = form.cleaned_data["email"]
                return redirect("signup-done")
        else:  # the rules' errors too (duplicates, check character, weak password), next to the type errors
            for field, messages_ in services.signup_errors(**form.service_kwargs()).items():
                if field in form.fields and field not in form.errors and field in form.cleaned_data:
                    for message in messages_:
                        form.add_error(field, message)
    return render(request, "accounts/signup.html", {"form": form}, status=status)


def signup_done(request):
    return render(request, "accounts/signup_done.html", {"email": request.session.get("signup_email", "")})


def signup_confirm(request, token: str):
    """The e-mailed link. GET shows a button (mail scanners that follow links must not use it up); POST confirms."""
    if request.method == "POST":
        try:
            services.user_confirm_email(token=token, ip=client_ip(request))
        except ApplicationError as exc:
            return render(request, "accounts/signup_confirm.html", {"error": exc.message}, status=exc.status)
        messages.success(request, _("Your e-mail address is confirmed: log in to continue."))
        return redirect("login")
    error = None
    try:
        emails.confirmation_user_id(token)
    except emails.ConfirmationError as exc:
        error = exc.message
    return render(request, "accounts/signup_confirm.html", {"error": error}, status=400 if error else 200)


# --- verification by platform staff --------------------------------------------------------------------------------


def _require_staff(request):
    if not selectors.is_platform_staff(request.user):
        raise PermissionDenied(_("Only platform staff verify organizations."))


@login_required
def verification_queue(request):
    """``/staff/organizations/``: organizations to verify (pending first, oldest first), then the decided ones."""
    _require_staff(request)
    wanted = request.GET.get("status") or VerificationStatus.PENDING
    if wanted not in (*VerificationStatus.values, "all"):
        wanted = VerificationStatus.PENDING
    queryset = selectors.organizations_for_review(status=None if wanted == "all" else wanted)
    page = Paginator(queryset.prefetch_related("memberships__user"), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "accounts/verification_queue.html",
        {
            "page": page,
            "status": wanted,
            "statuses": [*VerificationStatus.choices, ("all", _("All"))],
            "pending_count": selectors.organizations_for_review(status=VerificationStatus.PENDING).count(),
        },
    )


@login_required
@require_POST
def verification_decide(request, pk: int, decision: str):
    _require_staff(request)
    if decision not in ("verify", "reject"):
        raise Http404(_("No such decision."))
    try:
        if decision == "verify":
            org = services.organization_verify(
                organization_id=pk, actor=request.user, ip=client_ip(request), base_url=emails.site_url(request)
            )
            messages.success(request, _("%(name)s is verified.") % {"name": org.name})
        else:
            form = RejectForm(request.POST)
            reason = form.cleaned_data["reason"] if form.is_valid() else ""
            org = services.organization_reject(
                organization_id=pk,
                actor=request.user,
                reason=reason,
                ip=client_ip(request),
                base_url=emails.site_url(request),
            )
            messages.success(request, _("%(name)s is rejected.") % {"name": org.name})
    except ApplicationError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        details = " ".join(m for msgs in exc.errors.values() for m in msgs)
        messages.error(request, f"{exc.message} {details}".strip() if exc.errors else exc.message)
    return redirect(
        request.POST.get("next") if request.POST.get("next", "").startswith("/staff/") else "staff-organizations"
    )


# --- teams ---------------------------------------------------------------------------------------------------------


def _team_sections(request, forms_by_org: dict | None = None) -> list[dict]:
    sections = []
    for membership in selectors.user_memberships(request.user).order_by("organization__name"):
        org = membership.organization
        is_owner = membership.role == Membership.Role.OWNER
        sections.append(
            {
                "organization": org,
                "membership": membership,
                "is_owner": is_owner,
                "members": selectors.organization_members(org),
                "invitations": selectors.pending_invitations(org) if is_owner else [],
                "invite_form": (forms_by_org or {}).get(org.pk) or InviteForm(roles=services.invitable_roles(org)),
                "unverified_reason": selectors.unverified_reason(org),
            }
        )
    return sections


@login_required
def team(request):
    """``/organization/``: each of my organizations: its verification, members, pending invitations and (owners)
    the form to invite someone."""
    return render(request, "accounts/team.html", {"sections": _team_sections(request)})


@login_required
@require_POST
def team_invite(request, pk: int):
    membership = selectors.membership_of(request.user, pk)
    if membership is None:
        raise Http404(_("No such organization."))
    form = InviteForm(request.POST, roles=services.invitable_roles(membership.organization))
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                organization_id=pk,
                actor=request.user,
                ip=client_ip(request),
                base_url=emails.site_url(request),
                **form.cleaned_data,
            )
        except ApplicationError as exc:
            if exc.status == 403:
                raise PermissionDenied(exc.message) from None
            form.add_service_errors(exc)
        else:
            messages.success(
                request, _("Invitation sent to %(email)s; the link works for 7 days.") % {"email": invitation.email}
            )
            return redirect("team")
    return render(request, "accounts/team.html", {"sections": _team_sections(request, {pk: form})}, status=400)


@login_required
@require_POST
def team_remove(request, pk: int, user_id: int):
    try:
        services.membership_remove(organization_id=pk, user_id=user_id, actor=request.user, ip=client_ip(request))
    except ApplicationError as exc:
        if exc.status in (403, 404):
            raise
        messages.error(request, exc.message)
    else:
        if user_id == request.user.pk:
            messages.success(request, _("You left the organization."))
        else:
            messages.success(request, _("Member removed."))
    return redirect("team")


def invitation_accept(request, token: str):
    """``/invitations/<token>/``: see the invitation; accept it signed in, or create an account for the invited
    address."""
    invitation = selectors.invitation_by_token(token)
    if invitation is None:
        raise Http404(_("No such invitation."))
    signed_in = request.user.is_authenticated
    form = None if signed_in else InvitationSignupForm(request.POST or None)
    error, status = None, 200
    if request.method == "POST" and (signed_in or form.is_valid()):
        kwargs = (
            {} if signed_in else {"username": form.cleaned_data["username"], "password": form.cleaned_data["password"]}
        )
        try:
            membership = services.invitation_accept(token=token, user=request.user, ip=client_ip(request), **kwargs)
        except ApplicationError as exc:
            status = exc.status
            if form is not None and set(exc.errors) - {"token"}:
                form.add_service_errors(exc)
            else:
                error = exc.message
        else:
            if not signed_in:
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome to %(name)s.") % {"name": membership.organization.name})
            return redirect("team")
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "accounts/invitation.html",
        {
            "invitation": invitation,
            "form": form,
            "error": error,
            "token": token,
            "expired": invitation.expires_at <= timezone.now(),
        },
        status=status,
    )


# --- model filings -------------------------------------------------------------------------------------------------


@login_required
def model_filings(request):
    """``/model-filings/``: a startup's filings and the form to record one; for platform staff and issuers, every
    filing to check (pending first by default, ``?status=`` filters) with verify and reject."""
    reviewer = selectors.can_review_model_filings(request.user)
    is_startup = selectors.has_org_kind(request.user, Organization.Kind.STARTUP)
    if not (reviewer or is_startup):
        raise PermissionDenied(_("Model filings are recorded by startups and checked by issuers and platform staff."))
    form = ModelFilingForm(request.POST or None)
    if request.method == "POST" and is_startup and form.is_valid():
        try:
            filing = filing_services.model_filing_create(
                organization=selectors.acting_organization_for(request, Organization.Kind.STARTUP, for_write=True),
                actor=request.user,
                ip=client_ip(request),
                **form.cleaned_data,
            )
        except ApplicationError as exc:
            if exc.status == 403:
                raise
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                _("Filing %(number)s recorded: it counts once it is checked.") % {"number": filing.filing_number},
            )
            return redirect("model-filings")
    wanted = request.GET.get("status") or (ModelFiling.Status.PENDING if reviewer else "")
    filings = selectors.model_filings_visible(request.user)
    if wanted in ModelFiling.Status.values:
        filings = filings.filter(status=wanted)
    return render(
        request,
        "accounts/model_filings.html",
        {
            "form": form,
            "reviewer": reviewer,
            "is_startup": is_startup,
            "page": Paginator(filings, 25).get_page(request.GET.get("page")),
            "status": wanted,
            "statuses": ModelFiling.Status.choices,
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def model_filing_review(request, pk: int, decision: str):
    """Verify or reject a filing (platform staff and issuer members; a rejection needs a note)."""
    if decision not in filing_services.REVIEW_DECISIONS:
        raise Http404(_("No such decision."))
    try:
        filing = filing_services.model_filing_review(
            filing_id=pk,
            decision=decision,
            actor=request.user,
            note=request.POST.get("note", ""),
            ip=client_ip(request),
        )
    except ApplicationError as exc:
        if exc.status in (403, 404):
            raise
        details = " ".join(m for msgs in exc.errors.values() for m in msgs)
        messages.error(request, f"{exc.message} {details}".strip() if exc.errors else exc.message)
    else:
        messages.success(
            request,
            _("Filing %(number)s: %(status)s.")
            % {"number": filing.filing_number, "status": filing.get_status_display()},
        )
    return redirect("model-filings")
