"""Jinja filters for money, dates and labels, formatted for Panama in Spanish."""

import unicodedata
from datetime import UTC, date, datetime
from functools import lru_cache

import phonenumbers
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.support import Translations
from flask import Blueprint, Flask, current_app, request
from markupsafe import Markup, escape
from wtforms.i18n import messages_path

from portal import clock
from portal.config import Config
from portal.money import amount_in_words, money


def labels_register(bp: Blueprint, labels: dict[str, dict[str, str]]) -> None:
    """Make a feature's Spanish labels of its codes known to the `label` filter."""

    def record(state) -> None:
        tables = state.app.extensions.setdefault("labels", {})
        for kind, values in labels.items():
            tables.setdefault(kind, {}).update(values)

    bp.record_once(record)


def label(value: str | None, kind: str) -> str:
    """Spanish label of a stored code, from its feature's table (the code itself if unknown)."""
    return "—" if value is None else current_app.extensions["labels"][kind].get(value, value)


def phone(value: str | None) -> str:
    """An E.164 number as people read it: +507 6123-4567."""
    if not value:
        return "—"
    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def utilization(account) -> int:
    """Percent of the credit limit in use."""
    if not account.credit_limit:
        return 0
    return round(account.credit_used * 100 / account.credit_limit)


@lru_cache(maxsize=2048)
def _fold(character: str) -> str:
    base = "".join(
        c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c)
    )
    return base.lower() if len(base) == 1 else character.lower()


def _folded_text(text: str) -> str:
    """The text without accents, in lower case, one character for each of the text's."""
    if text.isascii():
        return text.lower()  # the same as folding each character, without the lookups
    return "".join(_fold(character) for character in text)


_MARK = Markup("<mark>%s</mark>")


@lru_cache(maxsize=256)
def _query_words(query: str) -> tuple[str, ...]:
    """The words highlight marks: folded, of two characters or more, the longest first."""
    folded = {word for word in map(_folded_text, query.split()) if len(word) >= 2}
    return tuple(sorted(folded, key=len, reverse=True))


def highlight(text: str | None, query: str | None) -> Markup:
    """Escape the text and mark the query's words in it, ignoring accents and case."""
    text = text or ""
    words = _query_words(query or "")
    folded = _folded_text(text) if words else ""
    spans = []
    for word in words:
        start = folded.find(word)
        while start != -1:
            spans.append((start, start + len(word)))
            start = folded.find(word, start + 1)
    if not spans:
        return escape(text)
    pieces, position, mark_end = [], 0, -1
    for start, end in [*sorted(spans), (len(text) + 1, 0)]:
        if start <= mark_end:  # overlapping or touching: one mark
            mark_end = max(mark_end, end)
            continue
        if mark_end > position:
            pieces.append(_MARK % text[position:mark_end])  # % escapes the text
            position = mark_end
        pieces.append(escape(text[position:start]))
        position, mark_end = start, end
    return Markup("").join(pieces)


@lru_cache(maxsize=4096)
def _day_medium(value: date) -> str:
    return babel_format_date(value, "d MMM y", locale=Config.BABEL_DEFAULT_LOCALE)


def _in_panama(moment: datetime) -> datetime:
    """The moment in Panama's time; a naive one is read as UTC, as Babel reads it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(clock.BUSINESS_ZONE)


def date_medium(value: date | datetime) -> str:
    """A date as "4 mar 2026"; a moment as its day in Panama. Days are cached (the portal has
    one locale, so no per-call locale lookup either): a 1,000-line statement has a few hundred
    distinct days, and Babel's formatting and the request's locale lookup were most of its
    rendering time."""
    if isinstance(value, datetime):
        value = _in_panama(value).date()
    return _day_medium(value)


@lru_cache(maxsize=4096)
def _minute_short(local: datetime) -> str:
    return babel_format_datetime(
        local, "d MMM y, h:mm a", tzinfo=clock.BUSINESS_ZONE, locale=Config.BABEL_DEFAULT_LOCALE
    )


def datetime_short(value: datetime) -> str:
    """A moment as "4 mar 2026, 2:05 p. m." in Panama's time, with the month spelled out
    (numeric dates are ambiguous: Panama's CLDR order is month/day). Cached per local minute,
    like `date_medium` per day: a customer page shows a few dozen moments, and Babel loads its
    locale data on every call (about 0.1 ms each)."""
    return _minute_short(_in_panama(value).replace(second=0, microsecond=0))


def age_days(moment: datetime) -> str:
    """How long ago, in whole business days: "hoy", "1 día", "12 días"."""
    days = (clock.today() - moment.astimezone(clock.BUSINESS_ZONE).date()).days
    return "hoy" if days <= 0 else f"{days} día" if days == 1 else f"{days} días"


def month_short(value: date) -> str:
    """A month as the charts label it: «nov 2026»."""
    return babel_format_date(value, "MMM y", locale=Config.BABEL_DEFAULT_LOCALE)


def first_upper(text: str | None) -> str:
    """The text with its first letter in upper case (Jinja's `capitalize` lowers the rest)."""
    return (text or "")[:1].upper() + (text or "")[1:]


def init_app(app: Flask) -> None:
    """Register the filters, and WTForms' Spanish messages loaded once."""
    # Flask-WTF would parse the catalog for every request that builds a form (about 1 ms);
    # the portal has one locale, so the request gets the catalog read at start.
    wtforms_messages = Translations.load(
        messages_path(), [Config.BABEL_DEFAULT_LOCALE], domain="wtforms"
    )

    @app.before_request
    def wtforms_translations():
        request.wtforms_translations = wtforms_messages

    app.add_template_filter(money, "money")
    app.add_template_filter(amount_in_words, "amount_in_words")
    app.add_template_filter(label, "label")
    app.add_template_filter(first_upper, "first_upper")
    app.add_template_filter(month_short, "month_short")
    app.add_template_filter(phone, "phone")
    app.add_template_filter(utilization, "utilization")
    app.add_template_filter(highlight, "highlight")
    app.add_template_filter(datetime_short, "datetime_short")
    app.add_template_filter(date_medium, "date_medium")
    app.add_template_filter(age_days, "age_days")
