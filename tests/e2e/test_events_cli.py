"""`flask events send FILE` signs and posts events to a running portal."""

import json
import uuid
from datetime import UTC, datetime

from tests import factories


def test_events_send_posts_a_signed_file(app, live_server, org_a, tmp_path):
    customer = factories.customer_create(org_a.organization_id)
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "pricing.loyalty.tier_changed",
        "occurred_at": datetime.now(UTC).isoformat(),
        "organization_id": str(org_a.organization_id),
        "data": {"customer_id": str(customer.customer_id), "new_tier": "platinum"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["events", "send", str(path), "--url", f"{live_server}/api/events"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("202 ") and '"accepted"' in result.output
    again = runner.invoke(args=["events", "send", str(path), "--url", f"{live_server}/api/events"])
    assert '"duplicate"' in again.output
    path.write_text("{roto")
    broken = runner.invoke(args=["events", "send", str(path), "--url", f"{live_server}/api/events"])
    assert broken.exit_code != 0 and "400" in broken.output
