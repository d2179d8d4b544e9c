"""After login the portal only ever redirects to a path of this site (`next` is hostile input)."""

from urllib.parse import quote, urlsplit

import pytest

from tests import factories

# Each one a known way to leave a site through a "relative" redirect, as typed in the URL
# (already percent-encoded where a browser or attacker would send it encoded).
BYPASS_SHAPES = [
    "//evil.example/x",
    "/\\evil.example/x",
    "/%5Cevil.example/x",
    "\\\\evil.example/x",
    "/%09/evil.example/phish",
    "/\t/evil.example/x",
    "https:evil.example",
    "https://evil.example/x",
    "http://evil",
    "HTTP://EVIL.EXAMPLE",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "///evil.example/x",
    " //evil.example/x",
    "%20//evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/\r\nSet-Cookie: x=1",
    "/%0d%0aSet-Cookie:x",
    "/%0aLocation:%20//evil.example",
    "/\u2028//evil.example",
    "/%E2%80%A8//evil.example",
    "evil.example",
    "//evil.example@portal/x",
    "http://[::1",
    "/x\x7f",
]


def _login_with_next(client, user, next_value: str, *, encoded: bool):
    query = next_value if encoded else quote(next_value, safe="")
    client.get("/login")
    return client.http.post(
        f"/login?next={query}",
        data={
            "email": user.email,
            "password": factories.TEST_PASSWORD,
            "csrf_token": client.csrf_token,
        },
    )


def _shapes():
    for shape in BYPASS_SHAPES:
        yield pytest.param(shape, False, id=f"value:{shape!r}")
        # Raw spaces and controls cannot travel unencoded in a request line.
        if shape.isprintable() and " " not in shape:
            yield pytest.param(shape, True, id=f"typed:{shape!r}")


@pytest.mark.parametrize("next_value, encoded", list(_shapes()))
def test_next_never_leaves_the_site(client, org_a, next_value, encoded):
    response = _login_with_next(client, org_a.users["branch_staff"], next_value, encoded=encoded)
    assert response.status_code == 302
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert location == "/", location
    assert not parts.scheme and not parts.netloc
    assert "Set-Cookie" not in response.headers or "x=1" not in response.headers["Set-Cookie"]


def test_a_nul_byte_in_next_is_refused_before_any_redirect(client, org_a):
    response = _login_with_next(client, org_a.users["branch_staff"], "/\x00//evil", encoded=False)
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    "next_value",
    ["/customers/?q=a", "/customers/?q=P%C3%A9rez&status=active", "/credit/aging", "/segments/"],
)
def test_next_to_a_page_of_this_site_is_kept(client, org_a, next_value):
    response = _login_with_next(client, org_a.users["credit_staff"], next_value, encoded=False)
    assert response.status_code == 302
    assert response.headers["Location"] == next_value


@pytest.mark.parametrize("next_value", ["/%0d%0aSet-Cookie:%20a=b", "%0D%0A//evil.example"])
def test_crlf_in_next_is_not_a_server_error(client, org_a, next_value):
    """Item 17: a CR/LF in `next` answered 500 (a header cannot hold a newline)."""
    assert client.get(f"/login?next={next_value}").status_code == 200
    response = _login_with_next(client, org_a.users["org_admin"], next_value, encoded=True)
    assert response.status_code == 302 and response.headers["Location"] == "/"
