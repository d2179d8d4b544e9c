"""Who may do what: one map from action to roles, used by views and templates alike."""

import functools

from flask import abort
from flask_login import current_user, login_required

from portal.auth.models import ROLES

EVERYONE = tuple(ROLES)
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "account.use": EVERYONE,  # one's own home page, password and logout
    "customers.view": EVERYONE,
    "customers.edit": ("branch_staff", "credit_staff"),
    "customers.note": ("branch_staff", "credit_staff", "credit_approver"),  # timeline notes
    "customers.export": ("credit_staff", "credit_approver", "org_admin"),
    "credit.view": EVERYONE,
    "credit.request": ("branch_staff", "credit_staff"),
    "credit.operate": ("credit_staff",),  # charges, payments, cancellations, increase requests
    "credit.approve": ("credit_approver",),  # decisions, suspensions, limits, reversals
    "credit.reports": ("credit_staff", "credit_approver", "org_admin"),
    "collections.work": ("credit_staff", "credit_approver", "org_admin"),  # worklist, contacts
    "collections.dunning": ("org_admin",),  # the dunning levels and their templates
    "segments.view": EVERYONE,
    "segments.recompute": ("org_admin",),
    "events.manage": ("org_admin",),
    "users.manage": ("org_admin",),
    "settings.manage": ("org_admin",),
}


def can(user, action: str) -> bool:
    """True when `user` is logged in and holds a role the action allows (unknown: KeyError)."""
    roles = PERMISSIONS[action]
    return bool(user and user.is_authenticated and user.has_role(*roles))


def permission_required(action: str):
    """Allow the view to logged-in users who `can` do `action`; others get 403."""
    roles = PERMISSIONS[action]  # an unknown action fails at import, not at request time

    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not can(current_user, action):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles
        wrapped.required_permission = action
        return wrapped

    return decorator
