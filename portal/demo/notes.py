"""Staff notes on a few demo customers (companies first), added through the notes service."""

import random
import uuid

import sqlalchemy as sa

from portal.auth.models import StaffUser
from portal.auth.permissions import PERMISSIONS
from portal.customers.models import Customer
from portal.customers.services import customer_note_add
from portal.db import organization_scope
from portal.extensions import db

NOTES = [
    "Prefiere que lo llamen después de las 3 pm.",
    "Compra al por mayor cada quincena; pide factura con RUC.",
    "Pidió actualizar la dirección de entrega en la próxima visita.",
    "Cliente de confianza: paga en efectivo en sucursal.",
    "Reclamó una entrega tardía; se le ofreció envío gratis en la próxima compra.",
    "El contacto de compras cambió; confirmar el correo antes de enviar el estado de cuenta.",
]


def notes_seed(*, organization_id: uuid.UUID, seed: int, customers: int = 12) -> int:
    """One or two notes on `customers` customers (half of them companies); returns notes added."""
    rng = random.Random(seed)
    added = 0
    with organization_scope(organization_id):
        staff = db.session.scalars(
            sa.select(StaffUser)
            .where(StaffUser.roles.overlap(list(PERMISSIONS["customers.note"])))
            .order_by(StaffUser.email)
        ).all()
        chosen = [
            customer_id
            for customer_type in ("b2b", "b2c")
            for customer_id in db.session.scalars(
                sa.select(Customer.customer_id)
                .where(Customer.customer_type == customer_type)
                .order_by(Customer.customer_id)
                .limit(customers // 2)
            )
        ]
        for customer_id in chosen:
            for body in rng.sample(NOTES, rng.choice([1, 2])):
                customer_note_add(customer_id=customer_id, body=body, actor=rng.choice(staff))
                added += 1
    return added
