"""Hostile input into every form a demo role can reach: never a 5xx, other organizations are 404.

The crawler logs in as each demo role, follows the links (and htmx GETs) of the pages it sees,
collects their forms (and htmx buttons), and posts each field with hostile values while the other
fields keep what the page offered. URLs that carry ids are retried with another organization's
ids. Forms come from the pages, never from a list, so new forms are covered when they appear.
"""

import heapq
import itertools
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from portal.db import organization_scope
from portal.extensions import db
from portal.seed import DEMO_ORG_ID, DEMO_PASSWORD, DEMO_USERS, OTHER_ORG_ID, demo_seed
from tests.conftest import PortalClient

ROLE_EMAILS = sorted(email for email, _, _ in DEMO_USERS[DEMO_ORG_ID])
HOSTILE = [
    "",
    "9" * 20_000,  # 20 kB
    "\u202e\u200b\u0007\u001b[31m\u0085\u2028",  # unicode and C0/C1 controls
    "١٢٣",  # Arabic-Indic digits
    "1e309",  # overflows a float
]
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NUMBER = re.compile(r"(?<=/)\d+(?=/|$)")
SKIPPED = re.compile(r"^/(static|api)/|/logout$|\.csv$")
ROW_PAGES = 20  # pages of one row kind (/customers/<id>): only some rows lead further
MAX_PAGES = 60
SELECT_OPTIONS = 6  # the first options of each select (the country list has 250)
_numbers = itertools.count(1)
OTHER_ORG_TABLES = {
    "customers": "customer_id",
    "addresses": "address_id",
    "credit_accounts": "credit_account_id",
    "credit_usages": "usage_id",
    "credit_payments": "payment_id",
    "staff_users": "staff_user_id",
}
# The URL segment before an id names its table (/customers/<id>, /credit/accounts/<id>, …).
SEGMENT_TABLES = {
    "addresses": "addresses",
    "accounts": "credit_accounts",
    "usages": "credit_usages",
    "payments": "credit_payments",
    "users": "staff_users",
}
ID_IN_PATH = re.compile(r"/([a-z_]+)/(" + UUID_TEXT.pattern + ")")


@dataclass
class Form:
    """A form (or an htmx button) as the page offers it."""

    method: str
    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    options: dict[str, list[str]] = field(default_factory=dict)  # a select's offered values
    page: str = ""  # where the form was found
    kinds: dict[str, str] = field(default_factory=dict)  # input type or inputmode per field

    def stateful(self) -> bool:
        """Hidden fields besides the CSRF token (a version, say) may change after a post."""
        return any(kind == "hidden" for name, kind in self.kinds.items() if name != "csrf_token")

    def key(self) -> tuple:
        return (self.method, _pattern(self.action), tuple(sorted({n for n, _ in self.fields})))


class PageParser(HTMLParser):
    """Links, htmx GETs and forms of one page."""

    def __init__(self, url: str):
        super().__init__(convert_charrefs=True)
        self.url = url
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if attributes.get("hx-get") and tag != "form":
            self.links.append(attributes["hx-get"])
        if tag == "form":
            method, action = "get", attributes.get("action") or self.url
            for verb in ("post", "put", "delete", "get"):
                if attributes.get(f"hx-{verb}"):
                    method, action = verb, attributes[f"hx-{verb}"]
                    break
            else:
                method = (attributes.get("method") or "get").lower()
            self._form = Form(method, action)
            return
        if self._form is None:
            if attributes.get("hx-post"):  # an htmx button outside a form
                self.forms.append(Form("post", attributes["hx-post"]))
            return
        name = attributes.get("name")
        if tag == "input" and name:
            kind = (attributes.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in attributes:
                return
            if kind not in ("submit", "button", "image", "file", "reset"):
                self._form.fields.append((name, attributes.get("value") or ""))
                self._form.kinds[name] = attributes.get("inputmode") or kind
        elif tag == "select" and name:
            self._select, self._select_first = name, None
        elif tag == "option" and self._select is not None:
            value = attributes.get("value", "")
            self._form.options.setdefault(self._select, []).append(value)
            if self._select_first is None or "selected" in attributes:
                self._select_first = value
        elif tag == "textarea" and name:
            self._textarea = name
            self._form.fields.append((name, ""))
            self._form.kinds[name] = "text"

    def handle_data(self, data):
        if self._textarea and self._form is not None:
            name, value = self._form.fields[-1]
            self._form.fields[-1] = (name, value + data)

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None and self._form is not None:
            self._form.fields.append((self._select, self._select_first or ""))
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def _plausible(form: Form) -> None:
    """Fill the fields the page left empty with plausible values by input kind (and give every
    e-mail a fresh one), so one hostile field at a time gets past the others' validation."""
    fresh = next(_numbers)
    fill = {
        "text": "Prueba",
        "tel": f"+5076{fresh:07d}",
        "date": date.today().isoformat(),
        "number": "30",
        "numeric": "30",
        "decimal": "10.00",
    }
    form.fields = [
        (
            name,
            f"crawler{fresh}@ejemplo.pa"
            if form.kinds.get(name) == "email"
            else value or fill.get(form.kinds.get(name, ""), ""),
        )
        for name, value in form.fields
    ]


def _pattern(url: str) -> str:
    parts = urlsplit(url)
    path = NUMBER.sub("{n}", UUID_TEXT.sub("{id}", parts.path))
    return path + "?" + ",".join(sorted({name for name, _ in parse_qsl(parts.query)}))


def _page_cap(pattern: str) -> int:
    """Row pages are sampled (some rows link to more); every other shape is visited once."""
    return ROW_PAGES if pattern.endswith("{id}?") else 1


def _local(url: str, base: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith("#") or not url:
        return None
    path = parts.path if parts.path.startswith("/") else urlsplit(base).path
    if SKIPPED.search(path):
        return None
    return path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Crawl:
    """What one role saw and what went wrong."""

    client: PortalClient
    other_ids: dict[str, uuid.UUID]
    failures: list[str] = field(default_factory=list)
    requests: Counter = field(default_factory=Counter)

    def send(self, method: str, url: str, data=None, *, htmx: bool = False):
        headers = {"HX-Request": "true"} if htmx else {}
        self.requests[method] += 1
        try:
            if method == "get":
                response = self.client.get(url, headers=headers)
            else:
                payload = MultiDict(data or [])
                if "csrf_token" not in payload and self.client.csrf_token:
                    payload["csrf_token"] = self.client.csrf_token
                headers["X-CSRFToken"] = self.client.csrf_token or ""
                response = self.client.http.open(
                    url, method=method.upper(), data=payload, headers=headers
                )
        except Exception as error:  # an escaped exception is exactly what we look for
            self.failures.append(f"{method.upper()} {url}: {type(error).__name__}: {error}")
            return None
        if response.status_code >= 500:
            self.failures.append(f"{method.upper()} {url} -> {response.status_code}")
        return response

    def pages(self, start: str) -> list[Form]:
        """Visit the role's pages, least-seen URL shape first; the forms found, one per shape.

        Shapes seen less often go first, so a page that only some rows link to (the credit
        account of a customer who has one) is reached without visiting every row.
        """
        visits, order, seen, forms = Counter(), itertools.count(), set(), {}
        queue = [(0, next(order), start)]
        while queue and len(seen) < MAX_PAGES:
            priority, _, url = heapq.heappop(queue)
            pattern = _pattern(url)
            if url in seen or visits[pattern] >= _page_cap(pattern):
                continue
            if priority != visits[pattern]:  # seen more often since it was queued
                heapq.heappush(queue, (visits[pattern], next(order), url))
                continue
            seen.add(url)
            visits[pattern] += 1
            response = self.send("get", url)
            if response is None or response.mimetype != "text/html":
                continue
            parser = PageParser(url)
            parser.feed(response.get_data(as_text=True))
            for raw in parser.links:
                if (link := _local(raw, url)) is not None and link not in seen:
                    heapq.heappush(queue, (visits[_pattern(link)], next(order), link))
            for form in parser.forms:
                if (action := _local(form.action, url)) is not None:
                    form.action, form.page = action, url
                    _plausible(form)
                    forms.setdefault(form.key(), form)
            if visits[pattern] == 1 and UUID_TEXT.search(urlsplit(url).path):
                self.foreign(url)
        return list(forms.values())

    def foreign(self, url: str, method: str = "get", data=None) -> None:
        """The URL with another organization's ids: never a page (GET: 403/404), never a 5xx."""

        def theirs(match: re.Match) -> str:
            table = SEGMENT_TABLES.get(match.group(1), "customers")
            return f"/{match.group(1)}/{self.other_ids.get(table, uuid.uuid4())}"

        foreign_url = ID_IN_PATH.sub(theirs, urlsplit(url).path)
        response = self.send(method, foreign_url, data)
        allowed = (403, 404) if method == "get" else (302, 303, 400, 403, 404, 409, 422)
        if response is not None and response.status_code not in allowed:
            self.failures.append(f"{method.upper()} {foreign_url} -> {response.status_code}")

    def hostile(self, form: Form, *, every_field: bool = True) -> None:
        """Each field left out, and with each hostile value (id-like fields also with other
        organizations' ids); with every_field=False, each hostile value into all fields at once.

        Every variant is built from the form's current values: an accepted post refreshes them.
        """
        names = list(dict.fromkeys(name for name, _ in form.fields if name != "csrf_token"))
        variants: list[tuple[str | None, str | None]] = []  # (field, value); None: left out
        if every_field:
            for name in names:
                # Each offered option too (a choice can be valid alone and invalid in a pair).
                values = HOSTILE + form.options.get(name, [])[:SELECT_OPTIONS]
                offered = [value for field_name, value in form.fields if field_name == name]
                if name.endswith("_id") or any(UUID_TEXT.fullmatch(value) for value in offered):
                    values += [str(other) for other in self.other_ids.values()]
                variants += [(name, None), *((name, value) for value in values)]
        else:
            variants = [(None, hostile) for hostile in HOSTILE]
        for name, value in variants:
            if name is None:
                data = [(n, v if n == "csrf_token" else value) for n, v in form.fields]
            else:
                data = [(n, v) for n, v in form.fields if n != name]
                data += [(name, value)] if value is not None else []
            if form.method == "get":
                self.send("get", f"{urlsplit(form.action).path}?{urlencode(data)}")
                continue
            response = self.send(form.method, form.action, data)
            if response is not None and response.status_code < 400 and form.stateful():
                self.refresh(form)

    def refresh(self, form: Form) -> None:
        """After an accepted post, take the form's current values again (its version, say),
        so later variants are not all refused as stale edits."""
        response = self.send("get", form.page)
        if response is None or response.mimetype != "text/html":
            return
        parser = PageParser(form.page)
        parser.feed(response.get_data(as_text=True))
        for fresh in parser.forms:
            fresh.action = _local(fresh.action, form.page) or fresh.action
            if fresh.key() == form.key():
                _plausible(fresh)
                form.fields = fresh.fields
                return
        if form.method != "get" and UUID_TEXT.search(form.action):
            self.foreign(form.action, form.method, form.fields)


def _ids(organization_id) -> dict[str, set]:
    """The row ids of one organization, read as the app role (RLS decides what is visible)."""
    with organization_scope(organization_id):
        return {
            table: set(db.session.scalars(sa.text(f"SELECT {column} FROM {table}")))
            for table, column in OTHER_ORG_TABLES.items()
        }


@pytest.fixture
def demo(app) -> dict[str, uuid.UUID]:
    """The demo organizations; per table, an id of the other organization's that ours lacks."""
    with app.app_context():
        demo_seed(customers=20)
        ours, theirs = _ids(DEMO_ORG_ID), _ids(OTHER_ORG_ID)
        db.session.remove()
    # Generated demo rows may share ids across organizations (keys are per organization).
    known = set().union(*ours.values())
    foreign = {table: sorted(theirs[table] - known) for table in OTHER_ORG_TABLES}
    assert foreign["customers"] and foreign["credit_accounts"]
    return {table: ids[0] for table, ids in foreign.items() if ids}


# Form shapes already posted field by field in this run; a later role that sees the same
# form (branch and credit staff share the customer forms) posts each value into all fields.
FUZZED: set[tuple] = set()


@pytest.mark.parametrize("email", ROLE_EMAILS)
def test_no_form_a_demo_role_reaches_answers_5xx_to_hostile_input(app, demo, email):
    client = PortalClient(app.test_client())
    client.get("/login")
    assert client.post("/login", {"email": email, "password": DEMO_PASSWORD}).status_code == 302
    crawl = Crawl(client, other_ids=demo)
    forms = crawl.pages("/")
    assert len(forms) >= 3, [form.action for form in forms]  # the crawler does find forms
    for form in forms:
        crawl.hostile(form, every_field=form.key() not in FUZZED)
        FUZZED.add(form.key())
    print(email, len(forms), dict(crawl.requests), [f.action for f in forms])
    assert crawl.failures == [], "\n".join(crawl.failures[:40])
