"""Filters that format moments for staff: Panama's time, months spelled out."""

from datetime import UTC, datetime, timedelta, timezone

from portal.formatting import date_medium, datetime_short, highlight

AFTERNOON = "7 dic 2026, 2:05 p.\u202fm."


def test_a_moment_is_shown_in_panama_time_with_the_month_spelled_out():
    assert datetime_short(datetime(2026, 12, 7, 19, 5, 30, tzinfo=UTC)) == AFTERNOON
    # the same instant given in another zone reads the same
    madrid = timezone(timedelta(hours=1))
    assert datetime_short(datetime(2026, 12, 7, 20, 5, 30, tzinfo=madrid)) == AFTERNOON


def test_late_at_night_in_utc_is_the_day_before_in_panama():
    assert datetime_short(datetime(2026, 3, 1, 4, 0, tzinfo=UTC)) == "28 feb 2026, 11:00 p.\u202fm."


def test_a_naive_moment_is_read_as_utc_and_seconds_do_not_change_the_text():
    assert datetime_short(datetime(2026, 12, 7, 19, 5, 0)) == AFTERNOON
    assert datetime_short(datetime(2026, 12, 7, 19, 5, 59, 999_999)) == AFTERNOON


def test_the_typed_words_are_marked_whatever_their_accents_and_case():
    assert str(highlight("María José Domínguez", "jose DOM")) == (
        "María <mark>José</mark> <mark>Dom</mark>ínguez"
    )
    assert str(highlight("maria.martinez.12@correo.pa", "MARÍA.MA")) == (
        "<mark>maria.ma</mark>rtinez.12@correo.pa"
    )


def test_highlighting_escapes_the_text():
    marked = "&lt;b&gt;<mark>Ana</mark>&lt;/b&gt; &amp; Co"
    assert str(highlight("<b>Ana</b> & Co", "ana")) == marked


def test_a_moment_shown_as_a_day_is_its_day_in_panama():
    assert date_medium(datetime(2026, 3, 1, 4, 0, tzinfo=UTC)) == "28 feb 2026"
    assert date_medium(datetime(2026, 3, 1, 4, 0)) == "28 feb 2026"  # naive: UTC
    assert date_medium(datetime(2026, 3, 1, 4, 0).date()) == "1 mar 2026"


def test_overlapping_and_touching_matches_make_one_mark():
    assert str(highlight("anaana banana", "ana")) == "<mark>anaana</mark> b<mark>anana</mark>"
    assert str(highlight("xaabx", "aa ab")) == "x<mark>aab</mark>x"
    assert str(highlight("50% & <i>", "50% <i")) == "<mark>50%</mark> &amp; <mark>&lt;i</mark>&gt;"
