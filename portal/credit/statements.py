"""The account statement as a document: what its page shows for a period, and the same partial
as PDF bytes, downloaded from the page or attached by the mail worker when it sends the message
(`email_outbox.statement_start/statement_end`)."""

import uuid
from datetime import date

from portal import clock
from portal.credit.models import CreditAccount
from portal.credit.reports import AGING_BUCKETS, account_aging, statement_lines
from portal.credit.services import account_get
from portal.customers.selectors import address_for_billing
from portal.customers.services import customer_get
from portal.documents import pdf_render
from portal.formatting import date_medium

STATEMENT_PARTIAL = "credit/_statement.html"


def statement_period(start: date | None, end: date) -> str:
    """The period as the statement names it: "del 1 sep 2026 al 7 dic 2026", or "desde la
    apertura al 7 dic 2026"."""
    since = f"del {date_medium(start)}" if start else "desde la apertura"
    return f"{since} al {date_medium(end)}"


def statement_document(
    account: CreditAccount, *, start: date | None, end: date | None, issued_on: date
) -> dict:
    """What the statement of `account` from `start` (None: the opening) to `end` (None: the
    issue day) shows, issued on `issued_on`: the partial's context, with its title."""
    customer = customer_get(account.customer_id)
    opening, lines, closing = statement_lines(account.credit_account_id, start=start, end=end)
    shown_end = end or issued_on
    return {
        "title": f"Estado de cuenta · {customer.full_name}",
        "account": account,
        "customer": customer,
        "billing_address": address_for_billing(account.customer_id),
        "issued_on": issued_on,
        "start": start,
        "end": shown_end,
        "period": statement_period(start, shown_end),
        "opening": opening,
        "lines": lines,
        "closing": closing,
        "aging_buckets": AGING_BUCKETS,
        "aging": account_aging(account.credit_account_id, as_of=min(shown_end, issued_on)),
    }


def statement_pdf(account_id: uuid.UUID, *, start: date | None, end: date) -> tuple[str, bytes]:
    """The statement of a period issued today as an e-mail attachment: (file name, PDF)."""
    account = account_get(account_id)
    if account is None:
        raise LookupError(account_id)
    context = statement_document(account, start=start, end=end, issued_on=clock.today())
    return f"estado-de-cuenta-{end:%Y-%m}.pdf", pdf_render(STATEMENT_PARTIAL, **context)
