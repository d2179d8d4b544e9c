"""Webhooks on the settings pages (org admins): subscriptions, the delivery log, redelivery."""

import uuid

from flask import abort, request, url_for
from flask_login import current_user

from portal.auth.permissions import permission_required
from portal.htmx import INVALID, done, form_page, render
from portal.security import shown_once_pop, shown_once_put
from portal.webhooks import bp
from portal.webhooks.forms import SubscriptionForm
from portal.webhooks.labels import DELIVERY_STATUSES
from portal.webhooks.selectors import delivery_log, subscriptions_list
from portal.webhooks.services import (
    delivery_redeliver,
    subscription_create,
    subscription_disable,
)

PAGE = "webhooks/index.html"


def _context(**extra) -> dict:
    status = request.args.get("status")
    status = status if status in DELIVERY_STATUSES else None
    return {
        "form": SubscriptionForm(formdata=None),
        "subscriptions": subscriptions_list(),
        "log": delivery_log(status=status),
        "delivery_status": status,
        "statuses": DELIVERY_STATUSES,
    } | extra


@bp.get("/")
@permission_required("settings.manage")
def index():
    """Subscriptions and the delivery log; after a registration, its secret once."""
    return render(PAGE, **_context(new_secret=shown_once_pop(request.args.get("shown"))))


@bp.post("/")
@permission_required("settings.manage")
def create():
    """Register a receiver URL; its signing secret is shown this once."""
    form = SubscriptionForm()
    if not form.validate_on_submit():
        return form_page(
            PAGE,
            "webhooks/_subscriptions.html",
            status=INVALID,
            page_url=url_for("webhooks.index"),
            **_context(form=form),
        )
    subscription, secret = subscription_create(
        url=form.url.data, event_types=form.event_types.data, actor=current_user
    )
    return done(
        f"Webhook «{subscription.url}» registrado. Copie el secreto ahora.",
        redirect_to=url_for("webhooks.index", shown=shown_once_put(secret)),
        partial="webhooks/_subscriptions.html",
        context=lambda: _context(new_secret=secret),
    )


@bp.post("/<uuid:subscription_id>/disable")
@permission_required("settings.manage")
def disable(subscription_id: uuid.UUID):
    """Stop sending events to a subscription."""
    try:
        subscription = subscription_disable(subscription_id=subscription_id, actor=current_user)
    except LookupError:
        abort(404)
    return done(
        f"Webhook «{subscription.url}» desactivado.",
        redirect_to=url_for("webhooks.index"),
        partial="webhooks/_subscriptions.html",
        context=_context,
    )


@bp.post("/deliveries/<uuid:delivery_id>/redeliver")
@permission_required("settings.manage")
def redeliver(delivery_id: uuid.UUID):
    """Send one delivery again (the receiver dedupes by event id)."""
    try:
        delivery = delivery_redeliver(delivery_id=delivery_id, actor=current_user)
    except LookupError:
        abort(404)
    return done(
        f"Entrega del evento {delivery.event_id} reprogramada.",
        redirect_to=url_for("webhooks.index"),
        partial="webhooks/_deliveries.html",
        context=_context,
    )
