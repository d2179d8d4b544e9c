"""docs/schema.md is the live schema: regenerate it with `make schema-doc` after a revision."""

from portal.schema_doc import SCHEMA_DOC, schema_markdown


def test_schema_doc_matches_the_migrated_database(owner_engine, app):
    with owner_engine.connect() as connection:
        live = schema_markdown(connection)
    assert SCHEMA_DOC.read_text() == live, "docs/schema.md is stale: run `make schema-doc`"
