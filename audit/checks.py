"""System checks of the audit log's configuration (``manage.py check --deploy``)."""

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
