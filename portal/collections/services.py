"""Collections writes: assigning accounts to collectors, logging contacts and promises to pay,
settling promises (nightly), dunning levels and the nightly dunning run, letters mailed. Each is
one unit of work, audited with its actor."""

import string
import uuid
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal import clock
from portal.audit import SYSTEM_ACTOR, Actor, audit_record
from portal.auth.models import Organization, StaffUser
from portal.auth.permissions import PERMISSIONS
from portal.collections.models import (
    CollectionAssignment,
    CollectionContact,
    CollectionPromise,
    DunningLevel,
    DunningSend,
)
from portal.credit.models import CreditAccount, CreditPayment
from portal.credit.services import account_get
from portal.credit.statements import statement_period
from portal.customers.models import Customer
from portal.customers.services import customer_get
from portal.db import current_organization_id
from portal.extensions import db
from portal.formatting import date_medium
from portal.mail.models import EmailOutbox
from portal.mail.services import outbox_add
from portal.money import money
from portal.transaction import atomic


class CollectionsError(ValueError):
    """A collections action that cannot be done: a Spanish message and the field it concerns."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def account_customer_name(account_id: uuid.UUID) -> str | None:
    """The name of the account's customer (None: no such account in this organization)."""
    return db.session.scalar(
        sa.select(Customer.full_name)
        .join(CreditAccount, CreditAccount.customer_id == Customer.customer_id)
        .where(CreditAccount.credit_account_id == account_id)
    )


@atomic
def assignment_set(
    *, account_ids: list[uuid.UUID], collector_id: uuid.UUID, actor: StaffUser
) -> list[str]:
    """Assign the accounts to the collector (replacing whoever had them); the customers' names."""
    collector = db.session.scalar(
        sa.select(StaffUser).where(StaffUser.staff_user_id == collector_id)
    )
    if (
        collector is None
        or not collector.is_active
        or not collector.has_role(*PERMISSIONS["collections.work"])
    ):
        raise CollectionsError("El cobrador no existe o no puede cobrar.", "collector")
    accounts = db.session.execute(
        sa.select(
            CreditAccount.credit_account_id,
            Customer.full_name,
            CollectionAssignment.collector_id,
        )
        .join(Customer, Customer.customer_id == CreditAccount.customer_id)
        .outerjoin(
            CollectionAssignment,
            CollectionAssignment.credit_account_id == CreditAccount.credit_account_id,
        )
        .where(CreditAccount.credit_account_id.in_(account_ids))
        .order_by(CreditAccount.credit_account_id)
        .with_for_update(of=CreditAccount)
    ).all()
    if len(accounts) != len(set(account_ids)):
        raise CollectionsError("Alguna cuenta ya no existe: recargue la página.", "account_ids")
    db.session.execute(
        insert(CollectionAssignment)
        .values(
            [
                {
                    "organization_id": current_organization_id(),
                    "credit_account_id": account_id,
                    "collector_id": collector_id,
                    "assigned_by": actor.staff_user_id,
                }
                for account_id, _, _ in accounts
            ]
        )
        .on_conflict_do_update(
            index_elements=["organization_id", "credit_account_id"],
            set_={
                "collector_id": collector_id,
                "assigned_by": actor.staff_user_id,
                "assigned_at": sa.func.now(),
            },
        )
    )
    for account_id, _, previous in accounts:
        audit_record(
            action="collections.assigned",
            entity_type="credit_account",
            entity_id=account_id,
            before={"collector_id": previous},
            after={"collector_id": collector_id},
            actor=actor,
        )
    return [name for _, name, _ in accounts]


@atomic
def contact_record(
    *,
    account_id: uuid.UUID,
    channel: str,
    outcome: str,
    note: str | None,
    next_action_on: date | None,
    promise_amount: Decimal | None,
    promise_due_on: date | None,
    actor: Actor,
) -> CollectionContact:
    """Log a contact with the account's customer; outcome `promise` records the promise to pay."""
    today = clock.today()
    if account_customer_name(account_id) is None:
        raise LookupError(account_id)
    if next_action_on is not None and next_action_on < today:
        raise CollectionsError("La próxima acción no puede ser en el pasado.", "next_action_on")
    promised = outcome == "promise"
    if promised and (promise_amount is None or promise_due_on is None):
        raise CollectionsError("Indique el monto y la fecha de la promesa.", "promise_amount")
    if not promised and (promise_amount is not None or promise_due_on is not None):
        raise CollectionsError(
            "El monto y la fecha solo van con el resultado «Promesa de pago».", "outcome"
        )
    if promised and promise_due_on < today:
        raise CollectionsError("La fecha prometida no puede ser en el pasado.", "promise_due_on")
    contact = CollectionContact(
        credit_account_id=account_id,
        channel=channel,
        outcome=outcome,
        note=note,
        next_action_on=next_action_on or (promise_due_on if promised else None),
        created_by=actor.staff_user_id,
    )
    db.session.add(contact)
    db.session.flush()
    after = {
        "channel": channel,
        "outcome": outcome,
        "note": note,
        "next_action_on": contact.next_action_on,
    }
    if promised:
        db.session.add(
            CollectionPromise(
                credit_account_id=account_id,
                contact_id=contact.contact_id,
                amount=promise_amount,
                promised_on=today,
                due_on=promise_due_on,
            )
        )
        after |= {"promise_amount": promise_amount, "promise_due_on": promise_due_on}
    audit_record(
        action="collections.contact_logged",
        entity_type="credit_account",
        entity_id=account_id,
        after=after,
        actor=actor,
    )
    return contact


# What an open promise's account paid from the day it was made to its date (reversed payments
# and write-offs do not count).
_PAID = (
    sa.select(sa.func.coalesce(sa.func.sum(CreditPayment.amount), 0))
    .where(
        CreditPayment.credit_account_id == CollectionPromise.credit_account_id,
        CreditPayment.kind == "payment",
        CreditPayment.reversed_at.is_(None),
        CreditPayment.payment_date >= CollectionPromise.promised_on,
        CreditPayment.payment_date <= CollectionPromise.due_on,
    )
    .correlate(CollectionPromise)
    .scalar_subquery()
)


@atomic
def promises_settle(*, today: date | None = None) -> dict:
    """Nightly: an open promise is kept once the payments since it was made cover it by its
    date, broken when its date has passed without; one statement, each settlement audited."""
    today = today or clock.today()
    kept = CollectionPromise.amount <= _PAID
    settled = db.session.execute(
        sa.update(CollectionPromise)
        .where(CollectionPromise.state == "open", kept | (CollectionPromise.due_on < today))
        .values(state=sa.case((kept, "kept"), else_="broken"), settled_at=sa.func.now())
        .returning(
            CollectionPromise.promise_id,
            CollectionPromise.credit_account_id,
            CollectionPromise.amount,
            CollectionPromise.due_on,
            CollectionPromise.state,
        )
        .execution_options(synchronize_session=False)
    ).all()
    for promise in settled:
        audit_record(
            action="collections.promise_settled",
            entity_type="credit_account",
            entity_id=promise.credit_account_id,
            before={"promise_id": promise.promise_id, "state": "open"},
            after={
                "promise_id": promise.promise_id,
                "amount": promise.amount,
                "due_on": promise.due_on,
                "state": promise.state,
            },
            actor=SYSTEM_ACTOR,
        )
    states = [promise.state for promise in settled]
    return {"kept": states.count("kept"), "broken": states.count("broken")}


# --- dunning -------------------------------------------------------------------------------

# What a reminder's subject and body may say, as {name}; filled per account by the nightly run.
PLACEHOLDERS = {
    "cliente": "nombre del cliente",
    "monto_vencido": "monto vencido",
    "vencido_desde": "fecha del cargo vencido más antiguo",
    "organizacion": "nombre de la organización",
}

_HOW_TO_PAY = (
    "Puede pagar en cualquiera de nuestras sucursales (efectivo o tarjeta) o por transferencia "
    "bancaria indicando su nombre completo. Si ya pagó, por favor ignore este mensaje."
)
# Suggested levels (the settings page offers the next one; the demo seeds them).
DUNNING_SUGGESTIONS = (
    (
        1,
        "Recordatorio amistoso",
        "Recordatorio de pago · {organizacion}",
        "Estimado(a) {cliente}:\n\nLe recordamos que su cuenta de crédito tiene un saldo vencido "
        f"de {{monto_vencido}} desde el {{vencido_desde}}.\n\n{_HOW_TO_PAY}\n\n"
        "Atentamente,\n{organizacion}",
    ),
    (
        15,
        "Recordatorio firme",
        "Saldo vencido de {monto_vencido} · {organizacion}",
        "Estimado(a) {cliente}:\n\nSu cuenta de crédito sigue con un saldo vencido de "
        "{monto_vencido} desde el {vencido_desde}. Le pedimos ponerse al día esta semana o "
        f"comunicarse con nosotros para acordar una fecha.\n\n{_HOW_TO_PAY}\n\n"
        "Atentamente,\n{organizacion}",
    ),
    (
        30,
        "Aviso de suspensión",
        "Aviso de suspensión de su crédito · {organizacion}",
        "Estimado(a) {cliente}:\n\nSu cuenta tiene un saldo vencido de {monto_vencido} desde "
        "el {vencido_desde}, por lo que su crédito queda suspendido hasta que se ponga al día."
        f"\n\n{_HOW_TO_PAY}\n\nAtentamente,\n{{organizacion}}",
    ),
)


def dunning_template_error(text: str) -> str | None:
    """Why a subject or body cannot be filled (an unknown {name}, a stray brace), or None."""
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None
        ]
    except ValueError:
        return "Hay una llave { o } sin cerrar; escriba {{ o }} para mostrarla."
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join(f"{{{key}}}" for key in PLACEHOLDERS)
            return f"«{{{name}}}» no es un dato conocido. Use: {known}."
    return None


@atomic
def dunning_level_save(
    *,
    level_id: uuid.UUID | None,
    days_overdue: int,
    name: str,
    subject: str,
    body: str,
    attach_statement: bool = False,
    actor: StaffUser,
) -> DunningLevel:
    """Create a dunning level (level_id None) or change one; audited with before and after."""
    if not all(text and text.strip() for text in (name, subject, body)):
        raise CollectionsError("Indique el nombre, el asunto y el texto.", "body")
    for field, text in (("subject", subject), ("body", body)):
        if error := dunning_template_error(text):
            raise CollectionsError(error, field)
    if level_id is None:
        level = DunningLevel(level_id=uuid.uuid4())
    else:
        level = db.session.scalar(
            sa.select(DunningLevel).where(DunningLevel.level_id == level_id).with_for_update()
        )
    if level is None:
        raise CollectionsError("El nivel ya no existe: recargue la página.", "days_overdue")
    fields = ("days_overdue", "name", "subject", "body", "attach_statement")
    before = None if level_id is None else {key: getattr(level, key) for key in fields}
    clash = db.session.scalar(
        sa.select(DunningLevel.level_id).where(
            DunningLevel.days_overdue == days_overdue, DunningLevel.level_id != level.level_id
        )
    )
    if clash is not None:
        raise CollectionsError("Ya hay un nivel para esos días de atraso.", "days_overdue")
    values = (days_overdue, name, subject, body, attach_statement)
    for key, value in zip(fields, values, strict=True):
        setattr(level, key, value)
    level.updated_by = actor.staff_user_id
    db.session.add(level)
    db.session.flush()
    audit_record(
        action="collections.dunning_level_saved",
        entity_type="dunning_level",
        entity_id=level.level_id,
        before=before,
        after={key: getattr(level, key) for key in fields},
        actor=actor,
    )
    return level


# Each overdue account's oldest late charge and amount overdue on :today, and the highest level
# it has reached that it was not sent yet; an open promise not yet due pauses every level but the
# organization's last (:last_days).
_DUNNING_DUE = sa.text(
    """
    WITH late AS (
        SELECT u.credit_account_id, min(u.due_date) AS oldest_due_on
        FROM credit_usages u
        WHERE u.status IN ('pending', 'overdue') AND u.due_date < :today
        GROUP BY u.credit_account_id
    )
    SELECT late.credit_account_id, late.oldest_due_on, :today - late.oldest_due_on AS days_overdue,
           level.level_id, c.first_name || ' ' || c.last_name AS name, c.email,
           b.days_1_30 + b.days_31_60 + b.days_61_90 + b.days_90_plus AS overdue
    FROM late
    CROSS JOIN LATERAL (
        SELECT l.level_id, l.days_overdue FROM dunning_levels l
        WHERE l.days_overdue <= :today - late.oldest_due_on
        ORDER BY l.days_overdue DESC LIMIT 1
    ) AS level
    JOIN credit_accounts a ON a.credit_account_id = late.credit_account_id
    JOIN customers c ON c.customer_id = a.customer_id
    CROSS JOIN LATERAL credit_account_buckets(late.credit_account_id, :today) AS b
    WHERE NOT EXISTS (SELECT 1 FROM dunning_sends s
                      WHERE s.credit_account_id = late.credit_account_id
                        AND s.level_id = level.level_id)
      AND (level.days_overdue = :last_days
           OR NOT EXISTS (SELECT 1 FROM collection_promises p
                          WHERE p.credit_account_id = late.credit_account_id
                            AND p.state = 'open' AND p.due_on >= :today))
    ORDER BY late.credit_account_id
    """
)


def _organization_name() -> str:
    return db.session.scalar(
        sa.select(Organization.name).where(
            Organization.organization_id == current_organization_id()
        )
    )


def _statement_start(today: date) -> date:
    """Where a reminder's statement starts: the first day of the month three months before the
    send day (it ends on the send day). Three whole months and the current one cover the
    charges a first reminder is about and what was paid since, whole months read as the
    customer's own records do; older movements are in the opening balance, and the statement's
    aging table still shows every amount owed, however old."""
    months = today.year * 12 + today.month - 1 - 3
    return date(months // 12, months % 12 + 1, 1)


@atomic
def dunning_run(*, today: date | None = None) -> dict:
    """Nightly: send each overdue account the highest level it has reached and not been sent,
    once — an e-mail, or a letter to print when the customer has no e-mail — each recorded in
    the contact log; returns how many of each."""
    today = today or clock.today()
    organization_id = current_organization_id()
    # One run per organization at a time; the unique (account, level) key guards the rest.
    db.session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext('dunning_run'), hashtext(:org))"),
        {"org": str(organization_id)},
    )
    levels = {level.level_id: level for level in db.session.scalars(sa.select(DunningLevel))}
    if not levels:
        return {"email": 0, "letter": 0}
    last_days = max(level.days_overdue for level in levels.values())
    due = db.session.execute(_DUNNING_DUE, {"today": today, "last_days": last_days}).all()
    organization = _organization_name()
    statement_start = _statement_start(today)
    contacts, sends, mail = [], [], []
    for row in due:
        level = levels[row.level_id]
        values = {
            "cliente": row.name,
            "monto_vencido": money(row.overdue),
            "vencido_desde": date_medium(row.oldest_due_on),
            "organizacion": organization,
        }
        subject, body = level.subject.format_map(values), level.body.format_map(values)
        channel = "email" if row.email else "letter"
        contact_id = uuid.uuid4()
        contacts.append(
            {
                "organization_id": organization_id,
                "contact_id": contact_id,
                "credit_account_id": row.credit_account_id,
                "channel": channel,
                "outcome": "reminder",
                "note": f"{level.name}: {subject}",
            }
        )
        sends.append(
            {
                "organization_id": organization_id,
                "send_id": uuid.uuid4(),
                "credit_account_id": row.credit_account_id,
                "level_id": level.level_id,
                "contact_id": contact_id,
                "channel": channel,
                "sent_on": today,
                "days_overdue": row.days_overdue,
                "overdue": row.overdue,
                "oldest_due_on": row.oldest_due_on,
                "subject": subject,
                "body": body,
            }
        )
        if row.email:
            mail.append(
                {
                    "to_address": row.email,
                    "subject": subject,
                    "body": body,
                    "credit_account_id": row.credit_account_id,
                    "send_id": sends[-1]["send_id"],
                }
                | (
                    {"statement_start": statement_start, "statement_end": today}
                    if level.attach_statement
                    else {}
                )
            )
    if sends:
        db.session.execute(sa.insert(CollectionContact), contacts)
        db.session.execute(sa.insert(DunningSend), sends)
        outbox_add(messages=mail)  # delivered by the worker once this commits
    channels = [send["channel"] for send in sends]
    return {"email": channels.count("email"), "letter": channels.count("letter")}


@atomic
def letter_mark_mailed(*, send_id: uuid.UUID, actor: StaffUser) -> DunningSend:
    """Staff printed and mailed a reminder letter: it leaves the worklist's "enviar carta"."""
    send = db.session.scalar(
        sa.select(DunningSend)
        .where(DunningSend.send_id == send_id, DunningSend.channel == "letter")
        .with_for_update()
    )
    if send is None:
        raise LookupError(send_id)
    if send.letter_mailed_at is None:
        send.letter_mailed_at = sa.func.now()
        send.letter_mailed_by = actor.staff_user_id
        audit_record(
            action="collections.letter_mailed",
            entity_type="credit_account",
            entity_id=send.credit_account_id,
            after={"send_id": send.send_id, "subject": send.subject},
            actor=actor,
        )
    return send


@atomic
def statement_send(
    *,
    account_id: uuid.UUID,
    start: date | None,
    end: date,
    key: uuid.UUID,
    actor: StaffUser,
) -> tuple[str, bool]:
    """Queue the account's statement from `start` (None: the opening) to `end` for its
    customer's e-mail, once per form `key`; logged as a contact and audited. The address, and
    created=False when the key had already queued it."""
    account = account_get(account_id, for_update=True)  # double submits serialise here
    if account is None:
        raise LookupError(account_id)
    queued = db.session.scalar(sa.select(EmailOutbox).where(EmailOutbox.idempotency_key == key))
    if queued is not None:
        if queued.credit_account_id != account_id:
            raise CollectionsError("Formulario no válido: recargue la página.")
        return queued.to_address, False
    customer = customer_get(account.customer_id)
    if not customer.email:
        raise CollectionsError(
            f"{customer.full_name} no tiene correo electrónico registrado: no se envió el estado "
            "de cuenta. Agréguelo en la ficha del cliente."
        )
    if end > clock.today():
        raise CollectionsError("El período no puede terminar después de hoy.", "end")
    organization, period = _organization_name(), statement_period(start, end)
    (outbox_id,) = outbox_add(
        messages=[
            {
                "to_address": customer.email,
                "subject": f"Estado de cuenta {period} · {organization}",
                "body": f"Estimado(a) {customer.full_name}:\n\nLe enviamos adjunto el estado de "
                f"cuenta de su crédito con {organization}, {period}.\n\nSi tiene alguna "
                "consulta sobre sus movimientos o su saldo, comuníquese con nosotros."
                f"\n\nAtentamente,\n{organization}",
                "credit_account_id": account_id,
                "statement_start": start,
                "statement_end": end,
                "idempotency_key": key,
            }
        ]
    )
    contact = CollectionContact(
        credit_account_id=account_id,
        channel="email",
        outcome="statement_sent",
        note=f"Estado de cuenta {period} enviado a {customer.email}.",
        created_by=actor.staff_user_id,
    )
    db.session.add(contact)
    db.session.flush()
    audit_record(
        action="collections.statement_sent",
        entity_type="credit_account",
        entity_id=account_id,
        after={
            "outbox_id": outbox_id,
            "contact_id": contact.contact_id,
            "to_address": customer.email,
            "statement_start": start,
            "statement_end": end,
        },
        actor=actor,
    )
    return customer.email, True
