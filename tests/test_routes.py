"""Routing tables (0027): login by e-mail, signed events by key id and API calls by key prefix
find their organization in a small table kept by triggers, then read one tenant row of that
organization. The routes follow every change; key ids and prefixes stay unique across
organizations; the app role cannot read a route."""

import uuid

import pytest
import sqlalchemy as sa

from portal.api.auth import key_parts
from portal.extensions import db
from tests import factories


def _routes(owner_engine, table: str) -> set:
    with owner_engine.connect() as connection:
        return set(connection.execute(sa.text(f"SELECT * FROM {table}")).all())


def _as_app(organization_id, statement: str, **parameters):
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            "SELECT set_config('app.current_organization_id', %s, true)", (str(organization_id),)
        )
        return connection.execute(sa.text(statement), parameters)


def _lookup(statement: str, **parameters) -> list:
    with db.engine.begin() as connection:
        return connection.execute(sa.text(statement), parameters).all()


def test_login_routes_follow_staff_users_and_an_address_may_route_to_two(
    app_ctx, owner_engine, org_a, org_b
):
    first = factories.staff_create(org_a.organization_id, ["branch_staff"], email="ana@test.pa")
    twin = factories.staff_create(org_b.organization_id, ["branch_staff"], email="ana@test.pa")
    found = _lookup("SELECT * FROM staff_login_lookup(' ANA@test.pa ')")
    assert set(found) == {
        (org_a.organization_id, first.staff_user_id),
        (org_b.organization_id, twin.staff_user_id),
    }
    _as_app(
        org_a.organization_id,
        "UPDATE staff_users SET email = 'ana.b@test.pa' WHERE staff_user_id = :u",
        u=first.staff_user_id,
    )
    assert _lookup("SELECT * FROM staff_login_lookup('ana@test.pa')") == [
        (org_b.organization_id, twin.staff_user_id)
    ]
    assert _lookup("SELECT * FROM staff_login_lookup('ana.b@test.pa')") == [
        (org_a.organization_id, first.staff_user_id)
    ]
    with owner_engine.connect() as connection:
        routed = connection.scalar(sa.text("SELECT count(*) FROM login_routes"))
        users = connection.scalar(sa.text("SELECT count(*) FROM staff_users"))
    assert routed == users


def test_the_login_form_finds_a_user_through_the_route(client, org_a):
    user = org_a.users["branch_staff"]
    assert client.login(user.email.upper()).status_code == 302


def test_a_key_id_stays_unique_across_organizations(app_ctx, org_a, org_b):
    key_id = uuid.uuid4()
    insert = (
        "INSERT INTO event_keys (organization_id, key_id, secret, label)"
        " VALUES (:org, :key, :secret, 'Precios')"
    )
    _as_app(org_a.organization_id, insert, org=org_a.organization_id, key=key_id, secret="s" * 40)
    with pytest.raises(sa.exc.IntegrityError):
        _as_app(
            org_b.organization_id, insert, org=org_b.organization_id, key=key_id, secret="t" * 40
        )
    assert _lookup("SELECT organization_id FROM event_key_lookup(:k)", k=key_id) == [
        (org_a.organization_id,)
    ]
    _as_app(
        org_a.organization_id,
        "UPDATE event_keys SET revoked_at = now() WHERE key_id = :k",
        k=key_id,
    )
    assert _lookup("SELECT * FROM event_key_lookup(:k)", k=key_id) == []


def test_an_api_prefix_stays_unique_across_organizations_and_routes_its_key(
    app_ctx, owner_engine, org_a, org_b
):
    key = factories.api_key_create(org_a.organization_id)
    prefix = key_parts(key)[1]
    [(organization_id, name)] = [
        (row.organization_id, row.name)
        for row in _lookup("SELECT * FROM api_key_lookup(:p)", p=prefix)
    ]
    assert organization_id == org_a.organization_id and name == "Checkout"
    assert (prefix, org_a.organization_id) in _routes(owner_engine, "api_key_routes")
    with owner_engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT * FROM api_keys WHERE prefix = :p"), {"p": prefix}
        ).one()
    with pytest.raises(sa.exc.IntegrityError):
        _as_app(
            org_b.organization_id,
            "INSERT INTO api_keys (organization_id, api_key_id, name, prefix, secret_hash, scopes)"
            " VALUES (:org, :id, 'Copia', :p, :h, :s)",
            org=org_b.organization_id,
            id=uuid.uuid4(),
            p=prefix,
            h=row.secret_hash,
            s=row.scopes,
        )


@pytest.mark.parametrize("table", ["login_routes", "event_key_routes", "api_key_routes"])
def test_the_app_role_cannot_read_or_write_a_route(app_ctx, org_a, table):
    for statement in (f"SELECT * FROM {table}", f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            _as_app(org_a.organization_id, statement)
