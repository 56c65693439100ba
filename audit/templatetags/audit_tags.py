"""Template helpers for the audit pages (the nav shows the Audit link only to those who may read audit data)."""

from django import template

from audit.scope import can_read_audit

register = template.Library()


@register.filter
def reads_audit(user) -> bool:
    """``{% if user|reads_audit %}``: auditors and voucher issuer members."""
    return can_read_audit(user)
