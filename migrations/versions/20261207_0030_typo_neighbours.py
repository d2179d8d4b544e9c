"""Name search: a typed word's near spellings without reading the whole dictionary.

Each typed word is corrected against the organization's word dictionary (`customer_name_words`)
by its five nearest spellings (`ORDER BY word <-> typed LIMIT 5` on the trigram GiST index);
the search then keeps those of score 0.3 or more (similarity 0.25 or more, rounded). When a
word has fewer than five spellings that close ("tomas", "edih"), the index walk went on through
every other word of the organization to find the remaining neighbours, tied at similarity 0,
and the sort then read every word of that tie too: 1,095 words at the benchmark's million
customers, 3.5 ms per typed word, and in proportion to the dictionary in a larger one. Timed
alone on that data, the steps function took 13 ms for "tomas bati", 7 of them there.

The neighbours are now asked only among the words at similarity 0.25 or more (`%`), which the
GiST index answers by itself (0.4 to 0.7 ms a word, any dictionary size). The candidates are the
same: the nearest words of similarity 0.25 or more are exactly those of the nearest five that
passed the score filter. The function sets `pg_trgm.similarity_threshold` itself (for the rest
of the caller's transaction, which compares no other trigrams) so a session's own setting
cannot change what a search finds; a `SET` clause on the function would be refused to its
non-superuser owner wherever pg_trgm's library is not yet loaded (a placeholder setting).

Revision ID: 0030_typo_neighbours
Revises: 0029_unread_indexes
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import earlier_revision

revision = "0030_typo_neighbours"
down_revision = "0029_unread_indexes"
branch_labels = None
depends_on = None

# (as revision 0028 left it, as this one writes it); each must occur exactly once.
EDITS = (
    (
        "WHERE length(t.typed_word) >= 3 AND t.typed_word ~ '[a-z]'",
        "WHERE length(t.typed_word) >= 3 AND t.typed_word ~ '[a-z]'"
        " AND d.word OPERATOR(public.%) t.typed_word",
    ),
    (
        "SELECT array_agg(k.word_number), array_agg(k.word), array_agg(k.score),",
        "PERFORM set_config('pg_trgm.similarity_threshold', '0.25', true);\n"
        "            SELECT array_agg(k.word_number), array_agg(k.word), array_agg(k.score),",
    ),
)


def _previous() -> str:
    return earlier_revision("20261207_0028_search_tenants.py").search_steps_sql()


def upgrade():
    statement = _previous()
    for before, after in EDITS:
        if statement.count(before) != 1:
            raise RuntimeError(f"customer_search_steps should contain {before!r} once")
        statement = statement.replace(before, after)
    op.execute(statement)


def downgrade():
    op.execute(_previous())
