"""The event API under hostile input (depth, NUL, surrogates, size, future dates) and its keys."""

import http.client
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from portal.events.ingest import signature_for
from portal.extensions import db
from tests import factories
from tests.test_events import SECRET, _event, _inbox, _post


@pytest.fixture
def customer(org_a):
    return factories.customer_create(org_a.organization_id, loyalty_tier="bronze")


def _signed_raw(client, raw: bytes, *, secret=SECRET, key_id=None):
    """POST a raw body exactly as given (its escapes unparsed), signed."""
    stamp = str(int(time.time()))
    headers = {"X-Timestamp": stamp, "X-Signature": signature_for(secret, stamp, raw)}
    if key_id:
        headers["X-Key-Id"] = str(key_id)
    return client.http.post(
        "/api/events", data=raw, headers=headers, content_type="application/json"
    )


def _envelope_text(org, customer, data_json: str) -> bytes:
    """An envelope whose `data` is spliced in as raw JSON text."""
    envelope = _event(org)
    envelope["data"] = "DATA"
    return json.dumps(envelope).replace('"DATA"', data_json).encode()


@pytest.mark.parametrize("depth", [500, 700, 900, 1000])
def test_deep_nesting_is_a_400_not_a_recursion_error(client, org_a, customer, depth):
    nested = "[" * depth + "]" * depth
    response = _signed_raw(client, _envelope_text(org_a, customer, nested))
    assert response.status_code == 400 and "anidado" in response.json["error"]
    bare = _signed_raw(client, b"[" * depth + b"]" * depth)
    assert bare.status_code == 400 and "anidado" in bare.json["error"]
    assert _inbox(org_a) == {}


def test_brackets_inside_strings_do_not_count_as_nesting(client, org_a, customer):
    data = json.dumps(
        {"customer_id": str(customer.customer_id), "new_tier": "gold", "nota": "[[[{{{" * 50}
    )
    response = _signed_raw(client, _envelope_text(org_a, customer, data))
    assert response.status_code == 202


def test_an_unterminated_string_of_escaped_quotes_is_refused_at_once(client, org_a):
    response = _signed_raw(client, b'"' + b'\\"' * 150_000)
    assert response.status_code == 400 and "JSON mal formado" in response.json["error"]


@pytest.mark.parametrize(
    "data_json",
    [
        '{"customer_id": "%s", "new_tier": "go\\u0000ld"}',
        '{"customer_id": "%s", "new_tier": "gold", "no\\u0000ta": 1}',
        '{"customer_id": "%s", "new_tier": "\\ud800"}',
        '{"customer_id": "%s", "new_tier": "gold", "x": ["\\udfff"]}',
    ],
)
def test_nul_and_lone_surrogates_are_a_400(client, org_a, customer, data_json):
    raw = _envelope_text(org_a, customer, data_json % customer.customer_id)
    assert b"\\u0000" in raw or b"\\ud" in raw  # the escape travels as written
    response = _signed_raw(client, raw)
    assert response.status_code == 400 and "no permitidos" in response.json["error"]
    assert _inbox(org_a) == {}


def test_a_surrogate_pair_is_ordinary_text(client, org_a, customer):
    data = '{"customer_id": "%s", "new_tier": "gold", "nota": "\\ud83d\\ude00"}'
    response = _signed_raw(client, _envelope_text(org_a, customer, data % customer.customer_id))
    assert response.status_code == 202


def _padded_batch(org, customer, size: int) -> bytes:
    """A valid signed-able batch of about `size` bytes."""
    events = [
        _event(org, customer_id=str(customer.customer_id), new_tier="gold", nota="x" * 1700)
        for _ in range(size // 2000)
    ]
    return json.dumps(events).encode()


@pytest.fixture
def live_server(app):
    """The portal on a real socket (werkzeug's server de-chunks like gunicorn does)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join()


def _post_chunked(port: int, body: bytes, headers: dict) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    chunks = (body[start : start + 65536] for start in range(0, len(body), 65536))
    connection.request("POST", "/api/events", body=chunks, headers=headers, encode_chunked=True)
    response = connection.getresponse()
    result = response.status, json.loads(response.read())
    connection.close()
    return result


def test_a_chunked_body_over_1_mb_is_refused_on_the_bytes_read(live_server, org_a, customer):
    body = _padded_batch(org_a, customer, 1_700_000)
    assert len(body) > 1_600_000
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Timestamp": stamp,
        "X-Signature": signature_for(SECRET, stamp, body),
    }  # no Content-Length: http.client sends Transfer-Encoding: chunked
    status, answer = _post_chunked(live_server, body, headers)
    assert status == 413 and "1 MB" in answer["error"]
    assert _inbox(org_a) == {}
    small = _padded_batch(org_a, customer, 200_000)
    headers["X-Signature"] = signature_for(SECRET, stamp, small)
    status, answer = _post_chunked(live_server, small, headers)
    assert status == 202 and len(answer["results"]) == len(json.loads(small))


def test_a_chunked_body_through_the_test_client_input_stream(app, org_a, customer):
    import io

    body = _padded_batch(org_a, customer, 1_700_000)
    stamp = str(int(time.time()))
    response = app.test_client().post(
        "/api/events",
        input_stream=io.BytesIO(body),
        headers={
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
            "X-Timestamp": stamp,
            "X-Signature": signature_for(SECRET, stamp, body),
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert _inbox(org_a) == {}


def test_occurred_at_more_than_five_minutes_ahead_is_refused(client, org_a, customer):
    now = datetime.now(UTC)
    later = _event(
        org_a,
        occurred=now + timedelta(minutes=10),
        customer_id=str(customer.customer_id),
        new_tier="gold",
    )
    far = _event(
        org_a,
        occurred=now + timedelta(days=3650),
        customer_id=str(customer.customer_id),
        new_tier="gold",
    )
    for event in (later, far):
        response = _post(client, event)
        assert response.status_code == 400 and "futuro" in response.json["error"]
    assert _inbox(org_a) == {}
    skewed = _event(
        org_a,
        occurred=now + timedelta(minutes=2),  # a sender's clock a little ahead is fine
        customer_id=str(customer.customer_id),
        new_tier="gold",
    )
    assert _post(client, skewed).status_code == 202


# --- per-organization keys ---------------------------------------------------------------


def _key_create(app, org) -> tuple[str, str]:
    result = app.test_cli_runner().invoke(
        args=["events", "key-create", "--organization-id", str(org.organization_id)]
    )
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.output.splitlines())
    return lines["X-Key-Id"], lines["Secret (shown only now)"]


def _post_with_key(client, body, key_id, secret):
    return _post(client, body, secret=secret, headers={"X-Key-Id": key_id})


def test_old_and_new_keys_overlap_then_the_revoked_one_is_refused(app, client, org_a, customer):
    old_id, old_secret = _key_create(app, org_a)
    new_id, new_secret = _key_create(app, org_a)
    assert old_id != new_id and len(new_secret.encode()) >= 32
    tier = {"customer_id": str(customer.customer_id), "new_tier": "gold"}
    assert _post_with_key(client, _event(org_a, **tier), old_id, old_secret).status_code == 202
    assert _post_with_key(client, _event(org_a, **tier), new_id, new_secret).status_code == 202
    revoked = app.test_cli_runner().invoke(
        args=["events", "key-revoke", "--organization-id", str(org_a.organization_id), old_id]
    )
    assert revoked.exit_code == 0 and "Revoked" in revoked.output
    refused = _post_with_key(client, _event(org_a, **tier), old_id, old_secret)
    assert refused.status_code == 401 and "revocada" in refused.json["error"]
    assert _post_with_key(client, _event(org_a, **tier), new_id, new_secret).status_code == 202
    assert len(_inbox(org_a)) == 3
    listing = (
        app.test_cli_runner()
        .invoke(args=["events", "key-list", "--organization-id", str(org_a.organization_id)])
        .output
    )
    assert f"{old_id}" in listing and "revoked" in listing and new_secret not in listing


def test_a_key_speaks_only_for_its_own_organization(app, client, org_a, org_b, customer):
    key_id, secret = _key_create(app, org_a)
    theirs = factories.customer_create(org_b.organization_id)
    other = _event(org_b, customer_id=str(theirs.customer_id), new_tier="gold")
    response = _post_with_key(client, other, key_id, secret)
    assert response.status_code == 403 and "otra organización" in response.json["error"]
    mixed = [_event(org_a, customer_id=str(customer.customer_id), new_tier="gold"), other]
    assert _post_with_key(client, mixed, key_id, secret).status_code == 403
    assert _inbox(org_a) == {} and _inbox(org_b) == {}


@pytest.mark.parametrize("key_id", ["no-es-uuid", "", str(uuid.uuid4())])
def test_unknown_key_ids_are_refused(app, client, org_a, customer, key_id):
    event = _event(org_a, customer_id=str(customer.customer_id), new_tier="gold")
    response = _post_with_key(client, event, key_id, SECRET)
    assert response.status_code == 401 and "X-Key-Id" in response.json["error"]


def test_a_key_id_with_the_wrong_secret_is_refused(app, client, org_a, customer):
    key_id, _ = _key_create(app, org_a)
    event = _event(org_a, customer_id=str(customer.customer_id), new_tier="gold")
    response = _post_with_key(client, event, key_id, SECRET)  # the global secret is not this key
    assert response.status_code == 401 and "Firma inválida" in response.json["error"]


def test_without_a_global_secret_only_organization_keys_are_accepted(
    app, client, org_a, customer, monkeypatch
):
    monkeypatch.setitem(app.config, "EVENTS_SECRET", None)
    event = _event(org_a, customer_id=str(customer.customer_id), new_tier="gold")
    response = _post(client, event)
    assert response.status_code == 401 and "X-Key-Id" in response.json["error"]
    key_id, secret = _key_create(app, org_a)
    assert _post_with_key(client, event, key_id, secret).status_code == 202


def test_the_app_role_cannot_read_key_secrets(app, org_a):
    _key_create(app, org_a)
    with factories.scoped(org_a.organization_id):
        assert db.session.scalar(sa.text("SELECT count(key_id) FROM event_keys")) == 1
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            db.session.execute(sa.text("SELECT secret FROM event_keys")).all()


def test_events_send_signs_with_an_organization_key(
    app, live_server, org_a, customer, tmp_path, monkeypatch
):
    key_id, secret = _key_create(app, org_a)
    file = tmp_path / "event.json"
    file.write_text(
        json.dumps(_event(org_a, customer_id=str(customer.customer_id), new_tier="gold"))
    )
    url = f"http://127.0.0.1:{live_server}/api/events"
    monkeypatch.setenv("EVENTS_KEY_SECRET", secret)
    result = app.test_cli_runner().invoke(
        args=["events", "send", str(file), "--url", url, "--key-id", key_id]
    )
    assert result.exit_code == 0 and result.output.startswith("202 "), result.output
    monkeypatch.setenv("EVENTS_KEY_SECRET", "x" * 43)
    wrong = app.test_cli_runner().invoke(
        args=["events", "send", str(file), "--url", url, "--key-id", key_id]
    )
    assert wrong.exit_code == 1 and wrong.output.startswith("Error: 401")
