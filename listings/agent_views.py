"""Pages: a cluster's agent page (``/provider/clusters/<id>/agent/``): its agent tokens (create: shown once; revoke),
its nodes as their agents report them (host, last heartbeat, inventory against the declaration), and how to run
the agent."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import Organization
from accounts.selectors import acting_organization
from listings import agent_selectors, agent_services
from listings.models import AgentToken, Cluster
from listings.selectors import provider_clusters
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin


class AgentTokenForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=80)
    login_user = forms.CharField(
        label=gettext_lazy("Login user for buyers"),
        max_length=32,
        initial="gpux",
        help_text=gettext_lazy("The one unprivileged local account the agent hands to buyers (never root)."),
    )


def _cluster(request, cluster_id, *, for_write: bool = False) -> Cluster:
    cluster = provider_clusters(request.user).filter(pk=cluster_id).first()
    if cluster is None:
        raise Http404(_("No such cluster."))
    if for_write:
        acting_organization(
            request.user,
            kind=Organization.Kind.PROVIDER,
            organization_id=cluster.data_center.provider_id,
            for_write=True,
        )
    return cluster


def _page(request, cluster: Cluster, *, form=None, new_token: str | None = None, status: int = 200):
    context = {
        "cluster": cluster,
        "tokens": agent_selectors.cluster_tokens(cluster),
        "nodes": agent_selectors.cluster_nodes(cluster),
        "mismatched": agent_selectors.cluster_hardware_mismatched(cluster),
        "form": form or AgentTokenForm(),
        "new_token": new_token,
        "platform_url": request.build_absolute_uri("/").rstrip("/"),
    }
    return render(request, "delivery/cluster_agent.html", context, status=status)


@login_required
def cluster_agent(request, cluster_id: int):
    """GET the page; POST creates a token and shows its text on this answer only (never stored, never again)."""
    if request.method != "POST":
        return _page(request, _cluster(request, cluster_id))
    cluster = _cluster(request, cluster_id, for_write=True)
    form = AgentTokenForm(request.POST)
    if form.is_valid():
        try:
            token, raw = agent_services.agent_token_create(cluster=cluster, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request, _("Agent token “%(name)s” created. Copy it now: it is not shown again.") % {"name": token.name}
            )
            response = _page(request, cluster, new_token=raw)
            response["Cache-Control"] = "no-store"
            return response
    return _page(request, cluster, form=form, status=400)


@login_required
@require_POST
def token_revoke(request, cluster_id: int, pk: int):
    cluster = _cluster(request, cluster_id, for_write=True)
    token = AgentToken.objects.filter(cluster=cluster, pk=pk).first()
    if token is None:
        raise Http404(_("No such agent token."))
    try:
        agent_services.agent_token_revoke(token=token, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Agent token “%(name)s” revoked: agents using it are refused from now on.") % {"name": token.name},
        )
    return redirect("cluster-agent", cluster_id=cluster.pk)


@login_required
@require_POST
def node_release(request, cluster_id: int, index: int):
    cluster = _cluster(request, cluster_id, for_write=True)
    try:
        agent_services.node_release(cluster=cluster, index=index, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("Node %(index)s released: the next new host to report takes it.") % {"index": index}
        )
    return redirect("cluster-agent", cluster_id=cluster.pk)
