"""The demo's checkout API key: published (like the demo password), printed by `make run`."""

import uuid

import sqlalchemy as sa

from portal.api.models import ApiKey
from portal.api.services import api_key_create
from portal.audit import SYSTEM_ACTOR
from portal.db import organization_scope
from portal.extensions import db

DEMO_API_KEY = "csk_00000000de30_demo-checkout-key-never-use-in-production-x"
DEMO_API_KEY_NAME = "Servicio de órdenes (demo)"


def api_key_seed(*, organization_id: uuid.UUID) -> None:
    """Install the demo key in the organization unless it is there already."""
    with organization_scope(organization_id):
        if db.session.scalar(sa.select(ApiKey.api_key_id).where(ApiKey.prefix == "00000000de30")):
            return
        api_key_create(
            name=DEMO_API_KEY_NAME,
            scopes=["customers:read", "credit:read", "credit:charge"],
            actor=SYSTEM_ACTOR,
            key=DEMO_API_KEY,
        )
