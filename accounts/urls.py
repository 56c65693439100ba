from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import api, licence_views, onboarding_views, token_api, token_views, two_factor_views, views

api_urlpatterns = [
    path("auth/token/", api.TokenApi.as_view(), name="api-token"),
    path("me/", api.MeApi.as_view(), name="api-me"),
    path("tokens/", token_api.ApiTokenListCreateApi.as_view(), name="api-tokens"),
    path("tokens/<int:pk>/", token_api.ApiTokenDetailApi.as_view(), name="api-token-detail"),
    path("signup/", api.SignupApi.as_view(), name="api-signup"),
    path("model-filings/", api.ModelFilingListCreateApi.as_view(), name="api-model-filings"),
    path("model-filings/<int:pk>/verify/", api.ModelFilingVerifyApi.as_view(), name="api-model-filing-verify"),
    path("model-filings/<int:pk>/reject/", api.ModelFilingRejectApi.as_view(), name="api-model-filing-reject"),
    path("signup/confirm/", api.SignupConfirmApi.as_view(), name="api-signup-confirm"),
    path("organizations/", onboarding_views.OrganizationListCreateApi.as_view(), name="api-organizations"),
    path("signup/resend/", onboarding_views.ConfirmationResendApi.as_view(), name="api-signup-resend"),
    path("organizations/<int:pk>/", api.OrganizationDetailApi.as_view(), name="api-organization"),
    path("organizations/<int:pk>/verify/", api.OrganizationVerifyApi.as_view(), name="api-organization-verify"),
    path("organizations/<int:pk>/licence/", licence_views.LicenceApi.as_view(), name="api-organization-licence"),
    path("organizations/<int:pk>/reject/", api.OrganizationRejectApi.as_view(), name="api-organization-reject"),
    path(
        "organizations/<int:pk>/invitations/",
        api.InvitationListCreateApi.as_view(),
        name="api-organization-invitations",
    ),
    path("organizations/<int:pk>/members/", api.MemberListApi.as_view(), name="api-organization-members"),
    path(
        "organizations/<int:pk>/members/<int:user_id>/", api.MemberDeleteApi.as_view(), name="api-organization-member"
    ),
    path("invitations/<str:token>/accept/", api.InvitationAcceptApi.as_view(), name="api-invitation-accept"),
]

urlpatterns = [
    path("account/tokens/", token_views.api_tokens, name="account-tokens"),
    path("signup/resend/", onboarding_views.confirmation_resend, name="signup-resend"),
    path("staff/organizations/new/", onboarding_views.staff_organization_create, name="staff-organization-new"),
    path("organization/<int:pk>/licence/", licence_views.licence, name="organization-licence"),
    path("login/two-factor/", two_factor_views.verify, name="two-factor-verify"),
    path("account/two-factor/", two_factor_views.setup, name="two-factor-setup"),
    path("account/tokens/<int:pk>/revoke/", token_views.api_token_revoke, name="account-token-revoke"),
    path("signup/", views.signup, name="signup"),
    path("signup/done/", views.signup_done, name="signup-done"),
    path("signup/confirm/<str:token>/", views.signup_confirm, name="signup-confirm"),
    # Password reset by e-mail: Django's own views, our templates (templates/registration/password_reset_*).
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"
    ),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("staff/organizations/", views.verification_queue, name="staff-organizations"),
    path("staff/organizations/<int:pk>/<str:decision>/", views.verification_decide, name="staff-organization-decide"),
    path("organization/", views.team, name="team"),
    path("model-filings/", views.model_filings, name="model-filings"),
    path("model-filings/<int:pk>/<str:decision>/", views.model_filing_review, name="model-filing-review"),
    path("organization/<int:pk>/invitations/", views.team_invite, name="team-invite"),
    path("organization/<int:pk>/members/<int:user_id>/remove/", views.team_remove, name="team-remove"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
]
