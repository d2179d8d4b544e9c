"""Organization boundaries through the web routes: another organization's ids answer 404."""

import uuid

from tests import factories


def test_customer_of_another_organization_is_404(login_as, org_a, org_b):
    theirs = factories.customer_create(org_b.organization_id, first_name="Olga")
    mine = factories.customer_create(org_a.organization_id, first_name="Ana")
    client = login_as("branch_staff")
    assert client.get(f"/customers/{mine.customer_id}").status_code == 200
    assert client.get(f"/customers/{theirs.customer_id}").status_code == 404
    assert client.get(f"/customers/{uuid.uuid4()}").status_code == 404
    listing = client.get("/customers/").text
    assert "Ana" in listing and "Olga" not in listing


def test_invalid_uuid_in_url_is_404(login_as):
    client = login_as("branch_staff")
    assert client.get("/customers/not-a-uuid").status_code == 404
    assert client.get("/customers/'%20OR%201=1--").status_code == 404


def test_admin_cannot_see_or_change_another_organizations_users(login_as, org_a, org_b):
    client = login_as("org_admin")
    other_user = org_b.users["branch_staff"]
    assert other_user.email not in client.get("/users/").text
    assert client.get(f"/users/{other_user.staff_user_id}").status_code == 404
    for action in ("active/off", "reset-password"):
        response = client.post(f"/users/{other_user.staff_user_id}/{action}")
        assert response.status_code == 404
    assert (
        factories.TEST_PASSWORD
        and client.post(
            f"/users/{other_user.staff_user_id}", {"full_name": "Hackeado", "roles": ["org_admin"]}
        ).status_code
        == 404
    )
    # Org B's user is untouched and can still log in.
    other_client = login_as("branch_staff", org_b)
    assert other_client.get("/customers/").status_code == 200
