"""Account pages: the login page with failed-attempt throttling."""

from django.contrib.auth import views as auth_views
from django.forms.utils import ErrorDict

from accounts import throttling


class ThrottledLoginView(auth_views.LoginView):
    """Django's LoginView that refuses a (username, IP) pair after too many failures: the form shows why, 429."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        ip = throttling.client_ip(request)
        if throttling.login_blocked(username=username, ip=ip):
            # An unbound form: validating the posted one would check the password, which is what is refused.
            form = self.get_form_class()(request=request, initial={"username": username})
            form.cleaned_data, form._errors = {}, ErrorDict()
            form.add_error(None, throttling.BLOCKED_MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        throttling.login_succeeded(username=form.get_user().get_username(), ip=throttling.client_ip(self.request))
        return super().form_valid(form)

    def form_invalid(self, form):
        throttling.login_failed(username=self.request.POST.get("username", ""), ip=throttling.client_ip(self.request))
        return super().form_invalid(form)
