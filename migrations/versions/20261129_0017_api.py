"""Checkout API: per-organization API keys, idempotent charges, the outbox and its webhooks.

An API request learns its organization only from its key, so it cannot read api_keys under RLS
before it knows which key it holds. api_key_lookup() is the reviewed path (as event_key_lookup
for signed events): given the key's public prefix it returns that active key's organization,
name, scopes and the SHA-256 of its secret, which the app compares in constant time. The
secret itself is never stored. Webhook deliveries due across organizations are found by
webhook_deliveries_due(), like inbox_stalled() for the event inbox.

Revision ID: 0017_api
Revises: 0016_search_months
Create Date: 2026-11-29
"""

from alembic import op

from portal.schema import app_role, grant_app, tenant_rls

revision = "0017_api"
down_revision = "0016_search_months"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE TABLE api_keys (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            api_key_id UUID NOT NULL DEFAULT gen_random_uuid(),
            name VARCHAR(100) NOT NULL CHECK (btrim(name) <> ''),
            prefix VARCHAR(16) NOT NULL CHECK (prefix ~ '^[0-9a-f]{12}$'),
            secret_hash CHAR(64) NOT NULL,
            scopes TEXT[] NOT NULL CHECK (
                cardinality(scopes) > 0
                AND scopes <@ ARRAY['credit:read', 'credit:charge', 'customers:read']
            ),
            created_by UUID,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            last_used_at TIMESTAMPTZ,
            revoked_at TIMESTAMPTZ,
            revoked_by UUID,
            PRIMARY KEY (organization_id, api_key_id),
            -- The prefix alone names the key on the wire, like a staff e-mail at login.
            CONSTRAINT unique_api_key_prefix UNIQUE (prefix),
            FOREIGN KEY (organization_id, created_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            FOREIGN KEY (organization_id, revoked_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            CONSTRAINT check_api_key_revoked CHECK (revoked_at IS NULL OR revoked_at >= created_at)
        )
        """
    )
    tenant_rls("api_keys")
    grant_app(
        "api_keys",
        "SELECT (organization_id, api_key_id, name, prefix, scopes, created_by, created_at, "
        "last_used_at, revoked_at, revoked_by), INSERT, UPDATE (last_used_at, revoked_at, "
        "revoked_by)",
    )
    op.execute("CREATE POLICY api_keys_lookup ON api_keys FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        """
        CREATE FUNCTION api_key_lookup(p_prefix TEXT)
        RETURNS TABLE (organization_id UUID, api_key_id UUID, name VARCHAR, secret_hash CHAR,
                       scopes TEXT[], last_used_at TIMESTAMPTZ)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT k.organization_id, k.api_key_id, k.name, k.secret_hash, k.scopes,
                   k.last_used_at
            FROM public.api_keys k
            WHERE k.prefix = p_prefix AND k.revoked_at IS NULL
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION api_key_lookup(TEXT) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION api_key_lookup(TEXT) TO {app_role()}")

    # The first answer to an Idempotency-Key, replayed to a retry with the same body.
    op.execute(
        """
        CREATE TABLE api_idempotency_keys (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            idempotency_key VARCHAR(255) NOT NULL CHECK (btrim(idempotency_key) <> ''),
            api_key_id UUID NOT NULL,
            request_hash CHAR(64) NOT NULL,
            order_number VARCHAR(64) NOT NULL,
            usage_id UUID,
            status_code SMALLINT,
            response JSONB,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, idempotency_key),
            FOREIGN KEY (organization_id, api_key_id)
                REFERENCES api_keys (organization_id, api_key_id),
            FOREIGN KEY (organization_id, usage_id)
                REFERENCES credit_usages (organization_id, usage_id)
        )
        """
    )
    # The order number a charge was made with, found from the charge.
    op.execute(
        "CREATE INDEX api_idempotency_usage ON api_idempotency_keys (organization_id, usage_id)"
        " WHERE usage_id IS NOT NULL"
    )
    tenant_rls("api_idempotency_keys")
    grant_app("api_idempotency_keys", "SELECT, INSERT, UPDATE (usage_id, status_code, response)")

    op.execute(
        """
        CREATE TABLE webhook_subscriptions (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            subscription_id UUID NOT NULL DEFAULT gen_random_uuid(),
            url VARCHAR(2000) NOT NULL CHECK (url ~ '^https?://[^\\s]+$'),
            secret TEXT NOT NULL CHECK (octet_length(secret) >= 32),
            event_types TEXT[] NOT NULL CHECK (cardinality(event_types) > 0),
            created_by UUID,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            disabled_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, subscription_id),
            FOREIGN KEY (organization_id, created_by)
                REFERENCES staff_users (organization_id, staff_user_id)
        )
        """
    )
    tenant_rls("webhook_subscriptions")
    grant_app("webhook_subscriptions", "SELECT, INSERT, UPDATE (disabled_at)")

    # Written in the transaction of the change it announces; append-only.
    op.execute(
        """
        CREATE TABLE outbox_events (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            event_id UUID NOT NULL DEFAULT gen_random_uuid(),
            event_type VARCHAR(60) NOT NULL,
            occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            data JSONB NOT NULL,
            PRIMARY KEY (organization_id, event_id)
        )
        """
    )
    op.execute("CREATE INDEX outbox_events_recent ON outbox_events (organization_id, occurred_at)")
    tenant_rls("outbox_events")
    grant_app("outbox_events", "SELECT, INSERT")

    op.execute(
        """
        CREATE TABLE webhook_deliveries (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            delivery_id UUID NOT NULL DEFAULT gen_random_uuid(),
            subscription_id UUID NOT NULL,
            event_id UUID NOT NULL,
            status VARCHAR(20) NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            last_status_code SMALLINT,
            last_error TEXT,
            delivered_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, delivery_id),
            CONSTRAINT unique_webhook_delivery UNIQUE (organization_id, subscription_id, event_id),
            FOREIGN KEY (organization_id, subscription_id)
                REFERENCES webhook_subscriptions (organization_id, subscription_id),
            FOREIGN KEY (organization_id, event_id)
                REFERENCES outbox_events (organization_id, event_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)"
        " WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX webhook_deliveries_recent ON webhook_deliveries"
        " (organization_id, created_at DESC)"
    )
    tenant_rls("webhook_deliveries")
    grant_app(
        "webhook_deliveries",
        "SELECT, INSERT, UPDATE (status, attempts, next_attempt_at, last_status_code, "
        "last_error, delivered_at)",
    )

    # The delivery log: one row per HTTP attempt.
    op.execute(
        """
        CREATE TABLE webhook_attempts (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            attempt_id BIGINT GENERATED ALWAYS AS IDENTITY,
            delivery_id UUID NOT NULL,
            attempted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            status_code SMALLINT,
            error TEXT,
            duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
            PRIMARY KEY (organization_id, attempt_id),
            FOREIGN KEY (organization_id, delivery_id)
                REFERENCES webhook_deliveries (organization_id, delivery_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX webhook_attempts_delivery ON webhook_attempts"
        " (organization_id, delivery_id, attempt_id)"
    )
    tenant_rls("webhook_attempts")
    grant_app("webhook_attempts", "SELECT, INSERT")

    op.execute(
        "CREATE POLICY webhook_deliveries_due ON webhook_deliveries FOR SELECT TO CURRENT_USER"
        " USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION webhook_deliveries_due(p_limit INTEGER DEFAULT 10000)
        RETURNS TABLE (organization_id UUID, delivery_id UUID)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT d.organization_id, d.delivery_id FROM public.webhook_deliveries d
            WHERE d.status = 'pending' AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at LIMIT p_limit
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION webhook_deliveries_due(INTEGER) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION webhook_deliveries_due(INTEGER) TO {app_role()}")


def downgrade():
    op.execute("DROP FUNCTION webhook_deliveries_due(INTEGER)")
    op.execute("DROP TABLE webhook_attempts")
    op.execute("DROP TABLE webhook_deliveries")
    op.execute("DROP TABLE outbox_events")
    op.execute("DROP TABLE webhook_subscriptions")
    op.execute("DROP TABLE api_idempotency_keys")
    op.execute("DROP FUNCTION api_key_lookup(TEXT)")
    op.execute("DROP TABLE api_keys")
