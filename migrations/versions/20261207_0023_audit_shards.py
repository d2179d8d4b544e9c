"""The audit chain in 16 strands per organization: concurrent audited writes stop queueing.

0008 chained every audit row of an organization after the one before, under a lock on the
organization's single chain head held until commit, so every audited write of an organization
(a payment, a charge, a customer edit) waited for the previous one's commit. Now each row joins
one of 16 chains, chosen by its entity (`hashtext(entity_type:entity_id) & 15`), so one entity's
history stays one ordered chain and writes about different entities rarely wait for each other.
Tamper evidence is unchanged: `flask audit verify` recomputes every link of every chain and
checks each chain's head. Existing rows form chain 0, which new rows of chain 0 continue.

Revision ID: 0023_audit_shards
Revises: 0022_worker_scale
Create Date: 2026-12-07
"""

from alembic import op

from portal.schema import AUDIT_SEAL_ONE_CHAIN, audit_chains_rebuild

revision = "0023_audit_shards"
down_revision = "0022_worker_scale"
branch_labels = None
depends_on = None

SEAL = """
CREATE OR REPLACE FUNCTION audit_log_seal() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head_hash TEXT;
BEGIN
    NEW.created_at := now();
    NEW.actor_id := nullif(current_setting('app.actor_id', true), '')::uuid;
    NEW.actor_label := coalesce(nullif(current_setting('app.actor_label', true), ''), 'system');
    NEW.chain := hashtext(NEW.entity_type || ':' || NEW.entity_id) & 15;
    SELECT last_hash INTO head_hash FROM audit_chain_heads
        WHERE organization_id = NEW.organization_id AND chain = NEW.chain FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO audit_chain_heads (organization_id, chain)
            VALUES (NEW.organization_id, NEW.chain)
            ON CONFLICT (organization_id, chain) DO NOTHING;
        SELECT last_hash INTO head_hash FROM audit_chain_heads
            WHERE organization_id = NEW.organization_id AND chain = NEW.chain FOR UPDATE;
    END IF;
    -- Numbered under the head's lock, so audit_id order is the chain order.
    NEW.audit_id := nextval(pg_get_serial_sequence('public.audit_log', 'audit_id'));
    NEW.prev_hash := head_hash;
    NEW.row_hash := audit_log_row_hash(NEW);
    UPDATE audit_chain_heads SET last_audit_id = NEW.audit_id, last_hash = NEW.row_hash
        WHERE organization_id = NEW.organization_id AND chain = NEW.chain;
    RETURN NEW;
END $$
"""


def upgrade():
    # A constant default: no table rewrite, existing rows read as chain 0 at once.
    op.execute("ALTER TABLE audit_log ADD COLUMN chain SMALLINT NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE audit_chain_heads ADD COLUMN chain SMALLINT NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE audit_chain_heads DROP CONSTRAINT audit_chain_heads_pkey")
    op.execute("ALTER TABLE audit_chain_heads ADD PRIMARY KEY (organization_id, chain)")
    op.execute(
        "ALTER TABLE audit_chain_heads ADD CONSTRAINT audit_chain_heads_chain_range"
        " CHECK (chain BETWEEN 0 AND 15)"
    )
    op.execute(SEAL)


def downgrade():
    # One chain per organization again: every row re-sealed in audit_id order, as 0008 did.
    op.execute(AUDIT_SEAL_ONE_CHAIN)
    op.execute("ALTER TABLE audit_chain_heads DROP CONSTRAINT audit_chain_heads_chain_range")
    op.execute("ALTER TABLE audit_chain_heads DROP CONSTRAINT audit_chain_heads_pkey")
    op.execute("ALTER TABLE audit_chain_heads DROP COLUMN chain")
    op.execute("ALTER TABLE audit_log DROP COLUMN chain")
    audit_chains_rebuild()
    op.execute("ALTER TABLE audit_chain_heads ADD PRIMARY KEY (organization_id)")
