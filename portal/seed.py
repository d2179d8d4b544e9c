"""Demo data: two organizations, their staff, customers that look like a real month of business.

`demo_seed` gives each organization ~2,000 customers with addresses, two years of purchases and
tier changes through the event inbox (portal.demo.events), a credit desk's history through the
credit services (portal.demo.credit), and finally the RFM segments. It is deterministic (fixed
random seeds) and placed relative to today, so the month always looks current.

Bulk loads use COPY into a temporary table, then one INSERT … SELECT inside the organization's
scope, so Row-Level Security checks every row (COPY straight into an RLS table is not allowed).
"""

import random
import re
import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from portal import clock
from portal.auth.models import Organization, StaffUser
from portal.auth.services import password_hash
from portal.customers.models import Customer
from portal.db import organization_scope
from portal.extensions import db

DEMO_ORG_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_ORG_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105 - documented demo-only password
DEMO_USERS = {
    DEMO_ORG_ID: [
        ("admin@demo.pa", "Ana Méndez", ["org_admin"]),
        ("sucursal@demo.pa", "Luis Batista", ["branch_staff"]),
        ("credito@demo.pa", "Carmen Ríos", ["credit_staff"]),
        ("aprobador@demo.pa", "Rubén Saldaña", ["credit_approver"]),
    ],
    OTHER_ORG_ID: [
        ("admin@otra.pa", "Olga Núñez", ["org_admin"]),
        ("credito@otra.pa", "Jaime Cedeño", ["credit_staff"]),
        ("aprobador@otra.pa", "Marta Villarreal", ["credit_approver"]),
    ],
}
DEMO_ORGANIZATIONS = [
    (DEMO_ORG_ID, "Demo Retail PA", "correo.pa"),
    (OTHER_ORG_ID, "Otra Tienda S.A.", "otra-correo.pa"),
]
DEMO_CUSTOMERS = 2000

FIRST_NAMES = [
    "José",
    "María",
    "Luis",
    "Ana",
    "Carlos",
    "Lucía",
    "Jorge",
    "Itzel",
    "Ricardo",
    "Yariela",
    "Andrés",
    "Sofía",
    "Rubén",
    "Marisol",
    "Héctor",
    "Gisela",
    "Álvaro",
    "Daniela",
    "Iván",
    "Yamileth",
    "Ramón",
    "Irene",
    "Óscar",
    "Mónica",
    "Julián",
    "Anabel",
    "Raúl",
    "Yesenia",
    "Efraín",
    "Nayeli",
    "Aníbal",
    "Kathia",
    "Rodrigo",
    "Dayana",
    "Tomás",
    "Edith",
    "Víctor",
]
LAST_NAMES = [
    "Pérez",
    "González",
    "Rodríguez",
    "Sánchez",
    "Martínez",
    "Castillo",
    "Herrera",
    "Núñez",
    "Quintero",
    "Batista",
    "Saldaña",
    "Domínguez",
    "Córdoba",
    "Jiménez",
    "Ríos",
    "Vásquez",
    "Muñoz",
    "Guerra",
    "Espinosa",
    "De León",
    "Araúz",
    "Samudio",
    "Pinzón",
    "Chávez",
    "Ortega",
    "Villarreal",
    "Solís",
    "Acosta",
    "Atencio",
    "Barría",
    "Cedeño",
    "Gutiérrez",
    "Méndez",
]
COMPANIES = [
    "Ferretería El Istmo",
    "Distribuidora Chiriquí",
    "Abarrotes La Chorrera",
    "Taller Azuero",
    "Panadería San Miguelito",
    "Farmacia Coclé",
    "Inversiones Bocas",
    "Comercial Veraguas",
]
CITIES = [
    ("Ciudad de Panamá", "Panamá"),
    ("San Miguelito", "Panamá"),
    ("David", "Chiriquí"),
    ("Colón", "Colón"),
    ("Santiago", "Veraguas"),
    ("Chitré", "Herrera"),
    ("La Chorrera", "Panamá Oeste"),
    ("Penonomé", "Coclé"),
    ("Las Tablas", "Los Santos"),
    ("Changuinola", "Bocas del Toro"),
]
STREETS = [
    "Calle 50",
    "Vía España",
    "Avenida Balboa",
    "Calle Uruguay",
    "Vía Argentina",
    "Avenida Central",
    "Calle 5ta",
    "Vía Transístmica",
    "Avenida Perú",
    "Calle Aquilino de la Guardia",
]
TIERS = ["bronze"] * 6 + ["silver"] * 3 + ["gold"] * 2 + ["platinum"]
CUSTOMER_COLUMNS = [
    "customer_id",
    "customer_type",
    "company_name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "document_type",
    "document_number",
    "birth_date",
    "gender",
    "status",
    "loyalty_tier",
    "preferred_language",
    "marketing_consent",
    "created_at",
    "last_purchase_at",
]


def _email_word(text: str) -> str:
    """A name as a mailbox word: no accents, spaces or punctuation ("De León" -> "deleon")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", plain)


def customer_rows(
    count: int,
    *,
    start: int = 0,
    seed: int = 2026,
    email_domain: str = "correo.pa",
    invent_last_purchase: bool = True,
):
    """`count` realistic customer rows (tuples in CUSTOMER_COLUMNS order), unique by index.

    The bulk loader invents a last purchase date; the demo leaves it to its purchase events
    (invent_last_purchase=False), so it always agrees with the customer's orders.
    """
    rng = random.Random(seed + start)
    now = datetime.now(UTC)
    for index in range(start, start + count):
        is_company = rng.random() < 0.08
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES) + ("" if rng.random() < 0.5 else " " + rng.choice(LAST_NAMES))
        company = f"{rng.choice(COMPANIES)}, S.A." if is_company else None  # first/last: contact
        if is_company:
            document_type, document = "ruc", f"{155600 + index}-1-{2024 + index % 3}"
        else:
            document_type = "cedula"
            document = f"{rng.randint(1, 13)}-{index // 10000 + 1}-{index % 10000}"
        created = now - timedelta(days=rng.randint(0, 2000), seconds=rng.randint(0, 86400))
        purchased = created + timedelta(days=rng.randint(0, 300)) if rng.random() < 0.8 else None
        yield (
            uuid.UUID(int=rng.getrandbits(128) | (4 << 76)),
            "b2b" if is_company else "b2c",
            company,
            first,
            last,
            ".".join(filter(None, [_email_word(company or first), _email_word(last), str(index)]))
            + f"@{email_domain}",
            f"+5076{index % 10_000_000:07d}",
            document_type,
            document,
            None if is_company else date(1950, 1, 1) + timedelta(days=rng.randint(0, 20000)),
            None if is_company else rng.choice(["female", "male"]),
            "blocked" if rng.random() < 0.01 else ("inactive" if rng.random() < 0.04 else "active"),
            rng.choice(TIERS),
            "es",
            rng.random() < 0.4,
            created,
            min(purchased, now) if purchased and invent_last_purchase else None,
        )


def bulk_load(table: str, columns: list[str], organization_id: uuid.UUID, rows) -> int:
    """Load rows into a tenant table with COPY into a temp table and one INSERT under RLS."""
    names = ", ".join(columns)
    with organization_scope(organization_id):
        connection = db.session.connection()
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE {table}_load ON COMMIT DROP AS "
            f"SELECT {names} FROM {table} WITH NO DATA"
        )
        raw = connection.connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table}_load ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        inserted = connection.exec_driver_sql(
            f"INSERT INTO {table} (organization_id, {names}) "
            f"SELECT %(org)s, {names} FROM {table}_load",
            {"org": organization_id},
        ).rowcount
        db.session.commit()
    return inserted


def customers_bulk_load(organization_id: uuid.UUID, rows) -> int:
    """Load customer rows (CUSTOMER_COLUMNS order) for one organization."""
    return bulk_load("customers", CUSTOMER_COLUMNS, organization_id, rows)


def _organization(organization_id: uuid.UUID, name: str) -> bool:
    with organization_scope(organization_id):
        if db.session.get(Organization, organization_id) is not None:
            return False
        db.session.add(Organization(organization_id=organization_id, name=name))
        hashed = password_hash(DEMO_PASSWORD)
        for email, full_name, roles in DEMO_USERS[organization_id]:
            db.session.add(
                StaffUser(email=email, full_name=full_name, roles=roles, password_hash=hashed)
            )
        db.session.commit()
    return True


ADDRESS_COLUMNS = [
    "customer_id",
    "address_type",
    "recipient_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "country",
    "is_default",
]


def _address_rows(organization_id: uuid.UUID, seed: int):
    """Zero to two addresses per customer, the first one the default."""
    rng = random.Random(seed)
    with organization_scope(organization_id):
        customers = db.session.execute(
            sa.select(Customer.customer_id, Customer.first_name, Customer.last_name).order_by(
                Customer.customer_id
            )
        ).all()
        db.session.rollback()
    for customer in customers:
        for number in range(rng.choice([0, 1, 1, 2])):
            city, state = rng.choice(CITIES)
            yield (
                customer.customer_id,
                rng.choice(["shipping", "billing", "both"]),
                f"{customer.first_name} {customer.last_name}",
                f"{rng.choice(STREETS)}, Edificio {rng.randint(1, 90)}",
                f"Apto. {rng.randint(1, 30)}{rng.choice('ABCD')}",
                city,
                state,
                "PA",
                number == 0,
            )


class DemoSeedRefused(RuntimeError):
    """The demo seed was asked for where it must never run."""


def demo_seed(*, customers: int = DEMO_CUSTOMERS) -> bool:
    """Create the demo organizations once (idempotent); True when something was created.

    Each gets `customers` customers and a realistic history ending today. Refused in
    production: the demo accounts share a published password.
    """
    from portal.demo import quick_commits
    from portal.demo.api import api_key_seed
    from portal.demo.collections import collections_seed
    from portal.demo.credit import credit_seed
    from portal.demo.events import events_seed
    from portal.demo.notes import notes_seed
    from portal.segments.services import segments_recompute

    if current_app.config["ENV_NAME"] == "production":
        raise DemoSeedRefused(
            "Demo data is never loaded with PORTAL_ENV=production (its accounts share a "
            "published password); start without the demo seed (make run: --no-seed)."
        )
    today = clock.today()
    created = False
    for number, (organization_id, name, domain) in enumerate(DEMO_ORGANIZATIONS):
        if not _organization(organization_id, name):
            continue
        seed = 2026 + number
        with quick_commits():
            rows = customer_rows(
                customers, seed=seed, email_domain=domain, invent_last_purchase=False
            )
            customers_bulk_load(organization_id, rows)
            addresses = list(_address_rows(organization_id, seed))  # read before the COPY
            bulk_load("addresses", ADDRESS_COLUMNS, organization_id, addresses)
            events_seed(organization_id=organization_id, seed=seed, today=today)
            credit_seed(organization_id=organization_id, seed=seed, today=today)
            collections_seed(organization_id=organization_id, seed=seed, today=today)
            notes_seed(organization_id=organization_id, seed=seed)
            with organization_scope(organization_id):
                segments_recompute()  # the segments page is populated on first visit
                db.session.commit()
        created = True
    api_key_seed(organization_id=DEMO_ORG_ID)  # also into demo data seeded before the API
    return created


@click.command("seed-demo")
@click.option(
    "--customers",
    "extra",
    type=click.IntRange(min=0),
    default=0,
    help="Also bulk-load this many generated customers into Demo Retail PA.",
)
@with_appcontext
def seed_demo_command(extra: int) -> None:
    """Create the demo organizations, users and customers (safe to run twice; never production)."""
    try:
        created = demo_seed()
    except DemoSeedRefused as error:
        raise click.ClickException(str(error)) from None
    click.echo("Demo data created." if created else "Demo data already present.")
    if extra:
        with organization_scope(DEMO_ORG_ID):
            start = db.session.scalar(sa.select(sa.func.count()).select_from(Customer))
        loaded = customers_bulk_load(
            DEMO_ORG_ID, customer_rows(extra, start=start + 1_000_000, email_domain="masivo.pa")
        )
        click.echo(f"Loaded {loaded} generated customers.")
