"""Demo data: two organizations, one user per role, realistic Panamanian customers.

Bulk loads use COPY into a temporary table, then one INSERT … SELECT inside the organization's
scope, so Row-Level Security checks every row (COPY straight into an RLS table is not allowed).
"""

import random
import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from portal import clock
from portal.audit import SYSTEM_ACTOR
from portal.auth.models import Organization, StaffUser
from portal.auth.services import password_hash
from portal.credit.models import CreditAccount, CreditRequest
from portal.credit.services import CreditError, payment_record, usage_charge
from portal.customers.models import Address, Customer
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
    OTHER_ORG_ID: [("admin@otra.pa", "Olga Núñez", ["org_admin"])],
}

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


def _ascii(text: str) -> str:
    return (
        unicodedata.normalize("NFKD", text)
        .encode("ascii", "ignore")
        .decode()
        .lower()
        .replace(" ", "")
    )


def customer_rows(count: int, *, start: int = 0, seed: int = 2026, email_domain: str = "correo.pa"):
    """`count` realistic customer rows (tuples in CUSTOMER_COLUMNS order), unique by index."""
    rng = random.Random(seed + start)
    now = datetime.now(UTC)
    for index in range(start, start + count):
        is_company = rng.random() < 0.08
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES) + ("" if rng.random() < 0.5 else " " + rng.choice(LAST_NAMES))
        if is_company:
            first, last = rng.choice(COMPANIES), "S.A."
            document_type, document = "ruc", f"{155600 + index}-1-{2024 + index % 3}"
        else:
            document_type = "cedula"
            document = f"{rng.randint(1, 13)}-{index // 10000 + 1}-{index % 10000}"
        created = now - timedelta(days=rng.randint(0, 2000), seconds=rng.randint(0, 86400))
        purchased = created + timedelta(days=rng.randint(0, 300)) if rng.random() < 0.8 else None
        yield (
            uuid.UUID(int=rng.getrandbits(128) | (4 << 76)),
            "b2b" if is_company else "b2c",
            first,
            last,
            f"{_ascii(first)}.{_ascii(last)}.{index}@{email_domain}",
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
            min(purchased, now) if purchased else None,
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


def _addresses_and_credit(organization_id: uuid.UUID, seed: int) -> None:
    rng = random.Random(seed)
    with organization_scope(organization_id):
        customers = list(db.session.scalars(sa.select(Customer).order_by(Customer.document_number)))
        staff = {user.email: user for user in db.session.scalars(sa.select(StaffUser))}
        for position, customer in enumerate(customers):
            for number in range(rng.choice([0, 1, 1, 2])):
                city, state = rng.choice(CITIES)
                db.session.add(
                    Address(
                        customer_id=customer.customer_id,
                        address_type=rng.choice(["shipping", "billing", "both"]),
                        recipient_name=customer.full_name,
                        address_line1=f"{rng.choice(STREETS)}, Edificio {rng.randint(1, 90)}",
                        address_line2=f"Apto. {rng.randint(1, 30)}{rng.choice('ABCD')}",
                        city=city,
                        state=state,
                        country="PA",
                        is_default=number == 0,
                    )
                )
            if position % 7 == 0:
                status = ["pending", "approved", "approved", "suspended", "cancelled"][
                    position // 7 % 5
                ]
                _credit_account(rng, customer, status, staff)
        db.session.commit()
        _credit_activity(rng)


REQUEST_REASONS = [
    "Cliente frecuente desde hace tres años; compra electrodomésticos a plazos para su negocio.",
    "Solicita crédito para amueblar su apartamento nuevo; presenta carta de trabajo y talonarios.",
    "Compras mensuales constantes en sucursal; pide financiar la renovación de su cocina.",
    "Comerciante con historial de pagos puntuales en otra cadena; adjunta referencias.",
    "Empleado público con ingresos estables; necesita equipos para el regreso a clases.",
    "Empresa cliente desde 2021; requiere crédito para reponer inventario de temporada.",
]
REJECTION_NOTES = "Ingresos no verificables con la documentación presentada."


def _credit_account(rng: random.Random, customer: Customer, status: str, staff: dict) -> None:
    """One account with the request that opened it (and its decision, unless still pending)."""
    requester = staff.get(rng.choice(["sucursal@demo.pa", "credito@demo.pa"]))
    approver = staff.get("aprobador@demo.pa") or min(staff.values(), key=lambda user: user.email)
    if requester is None and status == "pending":
        return  # an organization without a credit desk has nobody to request
    requested_limit = Decimal(rng.choice([500, 750, 1000, 1500, 2500, 3000, 5000]))
    term_days = rng.choice([15, 30, 45, 60])
    requested_at = datetime.now(UTC) - timedelta(
        days=rng.randint(0, 13), hours=rng.randint(0, 10), minutes=rng.randint(0, 59)
    )
    decided = status != "pending"
    approved = status in ("approved", "suspended")
    account = CreditAccount(
        customer_id=customer.customer_id,
        credit_limit=requested_limit if approved else Decimal(0),
        payment_term_days=term_days,
        status=status,
        approved_at=requested_at.date() + timedelta(days=1) if approved else None,
        approved_by=approver.staff_user_id if approved else None,
        approval_notes=REJECTION_NOTES if status == "cancelled" else None,
        suspended_at=datetime.now(UTC) if status == "suspended" else None,
        suspension_reason="Pagos atrasados reiterados" if status == "suspended" else None,
    )
    db.session.add(account)
    if requester is None:
        return
    db.session.flush()
    db.session.add(
        CreditRequest(
            credit_account_id=account.credit_account_id,
            kind="new_line",
            requested_limit=requested_limit,
            requested_term_days=term_days,
            reason=rng.choice(REQUEST_REASONS),
            requested_by=requester.staff_user_id,
            requested_at=requested_at,
            state=("approved" if approved else "rejected") if decided else "pending",
            decided_by=approver.staff_user_id if decided else None,
            decided_at=requested_at + timedelta(days=1) if decided else None,
            decision_notes=REJECTION_NOTES if status == "cancelled" else None,
            approved_limit=requested_limit if approved else None,
            approved_term_days=term_days if approved else None,
        )
    )


def _credit_activity(rng: random.Random) -> None:
    """A few charges and a partial payment on each approved account, through the ledger rules."""
    approved = db.session.scalars(
        sa.select(CreditAccount).where(CreditAccount.status == "approved")
    )
    for account_id in [account.credit_account_id for account in approved]:
        used = Decimal(0)
        for _ in range(rng.randint(1, 3)):
            amount = Decimal(rng.randint(2000, 15000)) / 100
            try:
                usage_charge(
                    account_id=account_id, order_id=uuid.uuid4(), amount=amount, actor=SYSTEM_ACTOR
                )
            except CreditError:
                break  # the limit is reached: exactly what the rules are for
            used += amount
        if used > 0:
            payment_record(
                account_id=account_id,
                amount=(used / 2).quantize(Decimal("0.01")),
                method="cash",
                reference="Recibo demo",
                payment_date=clock.today(),
                key=uuid.uuid4(),
                actor=SYSTEM_ACTOR,
            )


class DemoSeedRefused(RuntimeError):
    """The demo seed was asked for where it must never run."""


def demo_seed(*, customers: int = 300) -> bool:
    """Create the demo organizations once (idempotent); True when something was created.

    Refused in production: the demo accounts share a published password.
    """
    if current_app.config["ENV_NAME"] == "production":
        raise DemoSeedRefused(
            "Demo data is never loaded with PORTAL_ENV=production (its accounts share a "
            "published password); start without the demo seed (make run: --no-seed)."
        )
    created = False
    for organization_id, name, count, domain in (
        (DEMO_ORG_ID, "Demo Retail PA", customers, "correo.pa"),
        (OTHER_ORG_ID, "Otra Tienda S.A.", 60, "otra-correo.pa"),
    ):
        if _organization(organization_id, name):
            customers_bulk_load(organization_id, customer_rows(count, email_domain=domain))
            _addresses_and_credit(organization_id, seed=count)
            created = True
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
