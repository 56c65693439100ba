"""Page: the SSH public keys of the startup the user acts for (``/organization/ssh-keys/``): list, add, delete."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import keys
from accounts.models import Organization
from accounts.selectors import acting_organization_for
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin


class SshKeyForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=80, required=False)
    public_key = forms.CharField(
        label=gettext_lazy("Public key"),
        max_length=keys.MAX_KEY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "ssh-ed25519 AAAA… you@laptop"}),
        help_text=gettext_lazy("One line: ssh-ed25519, RSA of at least 3072 bits, or ECDSA; no options."),
    )


def _page(request, buyer: Organization, form=None, status: int = 200):
    context = {"buyer": buyer, "keys": keys.organization_ssh_keys(buyer), "form": form or SshKeyForm()}
    return render(request, "delivery/ssh_keys.html", context, status=status)


@login_required
def ssh_keys(request):
    if request.method != "POST":
        return _page(request, acting_organization_for(request, Organization.Kind.STARTUP))
    buyer = acting_organization_for(request, Organization.Kind.STARTUP, for_write=True)
    form = SshKeyForm(request.POST)
    if form.is_valid():
        try:
            key = keys.ssh_key_add(organization=buyer, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("SSH key “%(name)s” added.") % {"name": key.name})
            return redirect("ssh-keys")
    return _page(request, buyer, form, status=400)


@login_required
@require_POST
def ssh_key_delete(request, pk: int):
    buyer = acting_organization_for(request, Organization.Kind.STARTUP, for_write=True)
    keys.ssh_key_delete(organization=buyer, key_id=pk, actor=request.user)
    messages.success(request, _("SSH key deleted."))
    return redirect("ssh-keys")
