"""System checks of the audit log's configuration (``manage.py check --deploy``): the signing key (audit.E001) and the
retired keys whose heads must still verify (audit.E002)."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured


@register(Tags.security, deploy=True)
def audit_signing_key(app_configs=None, **kwargs):
    """audit.E001: production needs ``AUDIT_SIGNING_KEY``, a usable Ed25519 private key, to sign tree heads."""
    if settings.DEBUG and not settings.AUDIT_SIGNING_KEY:
        return []  # a development key is generated under .data/
    from audit.keys import signing_key

    try:
        signing_key()
    except ImproperlyConfigured as error:
        return [
            Error(
                str(error),
                hint='Generate one with: python -c "from audit.signing import *; '
                'print(private_key_pem(generate_dev_key()))" and keep it secret; publish its public key.',
                id="audit.E001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def audit_previous_public_keys(app_configs=None, **kwargs):
    """audit.E002: every entry of ``AUDIT_PREVIOUS_PUBLIC_KEYS`` is an Ed25519 public key, or old heads would not
    verify (``verify_audit`` and ``GET /api/v1/audit/public-keys/`` would fail on it)."""
    from audit.keys import previous_public_keys

    try:
        previous_public_keys()
    except ImproperlyConfigured as error:
        return [
            Error(
                str(error),
                hint="Give the public halves of retired signing keys only: the PEM that GET /api/v1/audit/public-key/ "
                "served for them (-----BEGIN PUBLIC KEY-----) or base64 of the raw 32 bytes, separated by newlines "
                "or commas.",
                id="audit.E002",
            )
        ]
    return []
