"""The audit log is append-only and tamper-evident: the database says when and who, and chains."""

import threading
import uuid

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from psycopg import errors as pg_errors
from sqlalchemy.exc import DBAPIError

from portal.audit import SYSTEM_ACTOR, AuditEntry, audit_record, audit_verify
from portal.db import organization_scope
from portal.extensions import db
from tests import factories

FORGED_INSERT = (
    "INSERT INTO audit_log (organization_id, actor_id, actor_label, action, entity_type,"
    " entity_id, created_at, prev_hash, row_hash)"
    " VALUES (:org, :actor, 'gerente@falso.pa', 'credit.approved', 'credit_account', '1',"
    " '2001-01-01T00:00:00Z', 'falso', 'falso')"
)


def _scoped(connection, organization_id, **settings):
    values = {"app.current_organization_id": str(organization_id)} | settings
    for name, value in values.items():
        connection.exec_driver_sql("SELECT set_config(%s, %s, true)", (name, value))


def _entries(organization_id) -> list[AuditEntry]:
    with organization_scope(organization_id):
        entries = list(db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.audit_id)))
        db.session.expunge_all()
        db.session.rollback()
    return entries


def _write(organization_id, count: int, actor=SYSTEM_ACTOR, entity_id="1") -> None:
    """`count` rows about one entity (so one chain), or about `count` entities when None."""
    with organization_scope(organization_id):
        for number in range(count):
            audit_record(
                action="test.written",
                entity_type="test",
                entity_id=number if entity_id is None else entity_id,
                after={"n": number, "texto": "ñandú"},
                actor=actor,
            )
        db.session.commit()


def _verify(app, *args):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def _tamper(owner_engine, organization_id, statement, **params):
    """What someone with the owner's password could do behind the application's back."""
    with owner_engine.begin() as connection:
        _scoped(connection, organization_id)
        connection.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        connection.execute(sa.text(statement), params)
        connection.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")


def test_forged_actor_and_time_are_overwritten_by_the_database(app_ctx, org_a):
    clerk = org_a.users["branch_staff"]
    with db.engine.begin() as connection:
        _scoped(connection, org_a.organization_id)
        connection.execute(sa.text(FORGED_INSERT), {"org": org_a.organization_id, "actor": None})
        _scoped(
            connection,
            org_a.organization_id,
            **{"app.actor_id": str(clerk.staff_user_id), "app.actor_label": clerk.email},
        )
        connection.execute(
            sa.text(FORGED_INSERT), {"org": org_a.organization_id, "actor": uuid.uuid4()}
        )
        now = connection.execute(sa.text("SELECT now()")).scalar()
    anonymous, stated = _entries(org_a.organization_id)
    assert (anonymous.actor_id, anonymous.actor_label) == (None, "system")
    assert (stated.actor_id, stated.actor_label) == (clerk.staff_user_id, clerk.email)
    for entry in (anonymous, stated):
        assert entry.created_at == now
        assert entry.prev_hash != "falso" and entry.row_hash != "falso"
    assert stated.prev_hash == anonymous.row_hash


def test_audit_record_names_each_entrys_actor_even_within_one_transaction(app_ctx, org_a):
    clerk = factories.staff_create(org_a.organization_id, ["branch_staff"])
    with organization_scope(org_a.organization_id):
        first = audit_record(action="a", entity_type="test", entity_id=1, actor=clerk)
        second = audit_record(action="b", entity_type="test", entity_id=2, actor=SYSTEM_ACTOR)
        third = audit_record(action="c", entity_type="test", entity_id=3, actor=clerk)
        actors = [(entry.actor_id, entry.actor_label) for entry in (first, second, third)]
        db.session.commit()
    assert actors == [
        (clerk.staff_user_id, clerk.email),
        (None, "system"),
        (clerk.staff_user_id, clerk.email),
    ]


def test_an_http_change_is_audited_with_the_logged_in_user(login_as, org_a):
    client = login_as("branch_staff")
    client.get("/customers/new")
    response = client.post(
        "/customers/new",
        {
            "customer_type": "b2c",
            "first_name": "Ana",
            "last_name": "Díaz",
            "preferred_language": "es",
        },
    )
    assert response.status_code == 302
    (entry,) = [e for e in _entries_in_app(org_a) if e.action == "customer.created"]
    assert entry.actor_label == org_a.users["branch_staff"].email


def _entries_in_app(org):
    with factories.scoped(org.organization_id):
        entries = list(db.session.scalars(sa.select(AuditEntry)))
        for entry in entries:
            db.session.expunge(entry)
    return entries


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor_label = 'otro'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE audit_chain_heads SET last_hash = 'x'",
        "DELETE FROM audit_chain_heads",
        "INSERT INTO audit_chain_heads (organization_id) VALUES (:org)",
    ],
)
def test_the_app_role_cannot_change_the_log_or_its_chain(app_ctx, org_a, statement):
    _write(org_a.organization_id, 2)
    with pytest.raises(DBAPIError) as raised, db.engine.begin() as connection:
        _scoped(connection, org_a.organization_id)
        connection.execute(sa.text(statement), {"org": uuid.uuid4()})
    assert isinstance(raised.value.orig, pg_errors.InsufficientPrivilege)
    assert len(_entries(org_a.organization_id)) == 2


def test_each_organization_has_its_own_chain(app, app_ctx, org_a, org_b):
    _write(org_a.organization_id, 3)
    _write(org_b.organization_id, 2)
    _write(org_a.organization_id, 2)
    for organization_id, size in ((org_a.organization_id, 5), (org_b.organization_id, 2)):
        entries = _entries(organization_id)
        assert len(entries) == size
        assert entries[0].prev_hash is None
        assert [entry.prev_hash for entry in entries[1:]] == [e.row_hash for e in entries[:-1]]
    result = _verify(app)
    assert result.exit_code == 0, result.output
    assert "audit chain intact: 7 rows in 2 organization(s)" in result.output


def test_concurrent_writers_keep_one_unbroken_chain(app, owner_engine, org_a):
    def writer():
        with app.app_context():
            for _ in range(5):
                _write(org_a.organization_id, 2)
            db.session.remove()

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with owner_engine.connect() as connection:
        report = audit_verify(connection)
    assert (report.rows, report.reason) == (60, None)


@pytest.mark.parametrize(
    ("tamper", "reported"),
    [
        ("UPDATE audit_log SET after = '{\"n\": 99}' WHERE audit_id = :third", "third"),
        (
            "UPDATE audit_log SET created_at = created_at - interval '1 day'"
            " WHERE audit_id = :third",
            "third",
        ),
        ("DELETE FROM audit_log WHERE audit_id = :third", "fourth"),
        ("DELETE FROM audit_log WHERE audit_id = :last", "head"),
    ],
)
def test_verify_names_the_first_broken_link(
    app, app_ctx, owner_engine, org_a, org_b, tamper, reported
):
    _write(org_b.organization_id, 3)
    _write(org_a.organization_id, 5)
    entries = _entries(org_a.organization_id)
    ids = {"third": entries[2].audit_id, "fourth": entries[3].audit_id, "last": entries[4].audit_id}
    assert _verify(app).exit_code == 0
    _tamper(owner_engine, org_a.organization_id, tamper, **ids)
    result = _verify(app)
    assert result.exit_code == 1
    broken_id = ids["last"] if reported == "head" else ids[reported]
    assert f"organization {org_a.organization_id}, audit_id {broken_id}" in result.output
    # The other organization's chain is intact, checked alone as the app role.
    app.config["DATABASE_OWNER_URL"], owner_url = None, app.config["DATABASE_OWNER_URL"]
    try:
        alone = _verify(app, "--organization", str(org_b.organization_id))
        mine = _verify(app, "--organization", str(org_a.organization_id))
        assert _verify(app).exit_code == 2  # every organization needs the owner
    finally:
        app.config["DATABASE_OWNER_URL"] = owner_url
    assert alone.exit_code == 0 and "3 rows in 1 organization(s)" in alone.output
    assert mine.exit_code == 1


def test_migration_chains_the_rows_that_existed_before_it(app, app_ctx, owner_engine, org_a):
    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
    before_chain = script.get_revision("0008_audit_chain").down_revision
    downgrade(revision=before_chain)
    try:
        with owner_engine.begin() as connection:
            _scoped(connection, org_a.organization_id)
            for number in range(4):
                connection.execute(
                    sa.text(
                        "INSERT INTO audit_log (organization_id, actor_label, action,"
                        " entity_type, entity_id, after) VALUES"
                        " (:org, 'antes@demo.pa', 'old.row', 'test', :n, '{\"viejo\": true}')"
                    ),
                    {"org": org_a.organization_id, "n": str(number)},
                )
    finally:
        upgrade()
    entries = _entries(org_a.organization_id)
    assert [entry.actor_label for entry in entries] == ["antes@demo.pa"] * 4  # kept as they were
    assert entries[0].prev_hash is None
    assert [entry.prev_hash for entry in entries[1:]] == [e.row_hash for e in entries[:-1]]
    _write(org_a.organization_id, 1)  # new rows of chain 0 continue the migrated chain
    new = _entries(org_a.organization_id)[-1]
    assert new.chain == 0 and new.prev_hash == entries[-1].row_hash
    assert _verify(app).exit_code == 0


def test_each_entity_keeps_one_chain_and_every_chain_is_verified(app, app_ctx, owner_engine, org_a):
    _write(org_a.organization_id, 12, entity_id=None)  # entities 0..11: several chains
    _write(org_a.organization_id, 3, entity_id="4")
    entries = _entries(org_a.organization_id)
    chains = {}
    for entry in entries:
        chains.setdefault(entry.chain, []).append(entry)
    assert len(chains) > 1
    for chain in chains.values():
        assert chain[0].prev_hash is None
        assert [e.prev_hash for e in chain[1:]] == [e.row_hash for e in chain[:-1]]
    assert len({e.chain for e in entries if e.entity_id == "4"}) == 1
    assert _verify(app).exit_code == 0
    # A row removed from the middle of any chain is found in that chain.
    fourth = [e for e in entries if e.entity_id == "4"]
    _tamper(
        owner_engine,
        org_a.organization_id,
        "DELETE FROM audit_log WHERE audit_id = :middle",
        middle=fourth[1].audit_id,
    )
    result = _verify(app)
    assert result.exit_code == 1
    assert f"audit_id {fourth[2].audit_id}: prev_hash does not match" in result.output


def test_writers_about_different_entities_do_not_wait_for_each_other(app, org_a):
    """Only writes that share a chain queue on its head until commit (entities 1 and 3 sit in
    different chains, as the first assertion checks)."""
    with app.app_context():
        chains = dict(
            db.session.execute(
                sa.text("SELECT n, hashtext('test:' || n) & 15 FROM unnest(CAST(:ns AS text[])) n"),
                {"ns": ["1", "3"]},
            ).all()
        )
        db.session.rollback()
    assert chains["1"] != chains["3"]
    holder = threading.Event()
    release = threading.Event()

    def hold_chain_of_entity_1():
        with app.app_context():
            with organization_scope(org_a.organization_id):
                audit_record(
                    action="test.written", entity_type="test", entity_id="1", actor=SYSTEM_ACTOR
                )
                holder.set()
                release.wait(30)
                db.session.commit()
            db.session.remove()

    thread = threading.Thread(target=hold_chain_of_entity_1)
    thread.start()
    try:
        assert holder.wait(30)
        with app.app_context(), organization_scope(org_a.organization_id):
            db.session.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            audit_record(
                action="test.written", entity_type="test", entity_id="3", actor=SYSTEM_ACTOR
            )
            db.session.commit()  # no lock timeout: another chain's head was free
            db.session.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(DBAPIError) as waited:
                audit_record(
                    action="test.written", entity_type="test", entity_id="1", actor=SYSTEM_ACTOR
                )
            assert isinstance(waited.value.orig, pg_errors.LockNotAvailable)
            db.session.rollback()
    finally:
        release.set()
        thread.join()
    with app.app_context():
        assert len(_entries(org_a.organization_id)) == 2
