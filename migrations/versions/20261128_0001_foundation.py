"""Foundation: organizations, staff, customers, addresses, credit, segments, audit log, RLS.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-28
"""

from alembic import op

from portal.schema import app_role, grant_app, tenant_rls

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = [
    "organizations",
    "staff_users",
    "customers",
    "addresses",
    "credit_accounts",
    "credit_usages",
    "credit_payments",
    "customer_segments",
    "audit_log",
]


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {app_role()}")

    op.execute(
        """
        CREATE TABLE organizations (
            organization_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            name VARCHAR(200) NOT NULL CHECK (length(btrim(name)) > 0),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """
    )

    op.execute(
        """
        CREATE TABLE staff_users (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            staff_user_id UUID NOT NULL DEFAULT gen_random_uuid(),
            email VARCHAR(255) NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
            full_name VARCHAR(200) NOT NULL CHECK (length(btrim(full_name)) > 0),
            password_hash TEXT NOT NULL,
            roles VARCHAR(30)[] NOT NULL DEFAULT '{}',
            is_active BOOLEAN NOT NULL DEFAULT true,
            failed_login_count INTEGER NOT NULL DEFAULT 0 CHECK (failed_login_count >= 0),
            locked_until TIMESTAMPTZ,
            last_login_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, staff_user_id),
            CONSTRAINT unique_staff_email UNIQUE (email),
            CONSTRAINT check_staff_roles CHECK (
                roles <@ ARRAY['branch_staff', 'credit_staff', 'credit_approver', 'org_admin']::VARCHAR(30)[]
            )
        )
        """
    )

    op.execute(
        """
        CREATE TABLE customers (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            customer_id UUID NOT NULL DEFAULT gen_random_uuid(),
            customer_type VARCHAR(20) NOT NULL DEFAULT 'b2c',
            first_name VARCHAR(100) NOT NULL,
            last_name VARCHAR(100) NOT NULL,
            email VARCHAR(255),
            phone VARCHAR(20),
            document_type VARCHAR(20),
            document_number VARCHAR(50),
            birth_date DATE,
            gender VARCHAR(20),
            status VARCHAR(20) NOT NULL DEFAULT 'active',
            loyalty_tier VARCHAR(20) DEFAULT 'bronze',
            preferred_language VARCHAR(10) DEFAULT 'es',
            marketing_consent BOOLEAN DEFAULT false,
            tags VARCHAR(255)[],
            metadata JSONB,
            notes TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ,
            last_purchase_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, customer_id),
            CONSTRAINT check_customer_type CHECK (customer_type IN ('b2c', 'b2b')),
            CONSTRAINT check_status CHECK (status IN ('active', 'inactive', 'blocked')),
            CONSTRAINT check_loyalty_tier CHECK (
                loyalty_tier IN ('bronze', 'silver', 'gold', 'platinum')
            ),
            CONSTRAINT check_document_type CHECK (
                document_type IN ('cedula', 'ruc', 'passport', 'other')
            ),
            CONSTRAINT unique_org_email UNIQUE (organization_id, email),
            CONSTRAINT unique_org_phone UNIQUE (organization_id, phone),
            CONSTRAINT unique_org_document UNIQUE (organization_id, document_number)
        )
        """
    )
    # The seed's single-column indexes, led by organization_id so RLS-scoped queries use them.
    op.execute(
        "CREATE INDEX idx_customers_organization ON customers (organization_id, created_at DESC)"
    )
    op.execute("CREATE INDEX idx_customers_email ON customers (organization_id, email)")
    op.execute("CREATE INDEX idx_customers_phone ON customers (organization_id, phone)")
    op.execute(
        "CREATE INDEX idx_customers_document ON customers (organization_id, document_number)"
    )
    op.execute("CREATE INDEX idx_customers_status ON customers (organization_id, status)")
    op.execute(
        "CREATE INDEX idx_customers_loyalty_tier ON customers (organization_id, loyalty_tier)"
    )
    op.execute(
        "CREATE INDEX idx_customers_last_purchase ON customers "
        "(organization_id, last_purchase_at DESC NULLS LAST)"
    )

    op.execute(
        """
        CREATE TABLE addresses (
            organization_id UUID NOT NULL,
            address_id UUID NOT NULL DEFAULT gen_random_uuid(),
            customer_id UUID NOT NULL,
            address_type VARCHAR(20) NOT NULL DEFAULT 'shipping',
            recipient_name VARCHAR(255),
            address_line1 VARCHAR(255) NOT NULL,
            address_line2 VARCHAR(255),
            city VARCHAR(100) NOT NULL,
            state VARCHAR(100),
            postal_code VARCHAR(20),
            country VARCHAR(3) NOT NULL DEFAULT 'PA',
            phone VARCHAR(20),
            is_default BOOLEAN NOT NULL DEFAULT false,
            is_active BOOLEAN NOT NULL DEFAULT true,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, address_id),
            FOREIGN KEY (organization_id, customer_id)
                REFERENCES customers (organization_id, customer_id) ON DELETE CASCADE,
            CONSTRAINT check_address_type CHECK (address_type IN ('shipping', 'billing', 'both')),
            CONSTRAINT check_address_country CHECK (country ~ '^[A-Z]{2,3}$')
        )
        """
    )
    op.execute("CREATE INDEX idx_addresses_customer ON addresses (organization_id, customer_id)")
    op.execute("CREATE INDEX idx_addresses_is_default ON addresses (organization_id, is_default)")
    op.execute(
        "CREATE UNIQUE INDEX unique_active_default_address ON addresses "
        "(organization_id, customer_id) WHERE is_default AND is_active"
    )

    op.execute(
        """
        CREATE TABLE credit_accounts (
            organization_id UUID NOT NULL,
            credit_account_id UUID NOT NULL DEFAULT gen_random_uuid(),
            customer_id UUID NOT NULL,
            credit_limit NUMERIC(12, 2) NOT NULL CHECK (credit_limit >= 0),
            credit_used NUMERIC(12, 2) NOT NULL DEFAULT 0.00 CHECK (credit_used >= 0),
            credit_available NUMERIC(12, 2) GENERATED ALWAYS AS (credit_limit - credit_used) STORED,
            payment_term_days INTEGER NOT NULL DEFAULT 30 CHECK (payment_term_days BETWEEN 1 AND 365),
            status VARCHAR(20) NOT NULL DEFAULT 'pending',
            approved_at DATE,
            approved_by UUID,
            approval_notes TEXT,
            suspended_at TIMESTAMPTZ,
            suspension_reason TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, credit_account_id),
            CONSTRAINT unique_org_credit_customer UNIQUE (organization_id, customer_id),
            FOREIGN KEY (organization_id, customer_id)
                REFERENCES customers (organization_id, customer_id),
            FOREIGN KEY (organization_id, approved_by)
                REFERENCES staff_users (organization_id, staff_user_id),
            CONSTRAINT check_credit_status CHECK (
                status IN ('pending', 'approved', 'suspended', 'cancelled')
            ),
            CONSTRAINT check_credit_used_limit CHECK (credit_used <= credit_limit)
        )
        """
    )
    op.execute("CREATE INDEX idx_credit_customer ON credit_accounts (organization_id, customer_id)")
    op.execute(
        "CREATE INDEX idx_credit_status ON credit_accounts (organization_id, status, created_at)"
    )
    op.execute(
        "CREATE INDEX idx_credit_approved_by ON credit_accounts (organization_id, approved_by)"
    )

    op.execute(
        """
        CREATE TABLE credit_usages (
            organization_id UUID NOT NULL,
            usage_id UUID NOT NULL DEFAULT gen_random_uuid(),
            credit_account_id UUID NOT NULL,
            order_id UUID NOT NULL,
            amount NUMERIC(12, 2) NOT NULL CHECK (amount > 0),
            status VARCHAR(20) NOT NULL DEFAULT 'pending',
            due_date DATE NOT NULL,
            paid_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, usage_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id),
            CONSTRAINT unique_org_order UNIQUE (organization_id, order_id),
            CONSTRAINT check_usage_status CHECK (status IN ('pending', 'paid', 'overdue', 'cancelled'))
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_credit_usage_account ON credit_usages (organization_id, credit_account_id)"
    )
    op.execute("CREATE INDEX idx_credit_usage_order ON credit_usages (organization_id, order_id)")
    op.execute("CREATE INDEX idx_credit_usage_status ON credit_usages (organization_id, status)")
    op.execute(
        "CREATE INDEX idx_credit_usage_due_date ON credit_usages (organization_id, due_date)"
    )

    op.execute(
        """
        CREATE TABLE credit_payments (
            organization_id UUID NOT NULL,
            payment_id UUID NOT NULL DEFAULT gen_random_uuid(),
            credit_account_id UUID NOT NULL,
            amount NUMERIC(12, 2) NOT NULL CHECK (amount > 0),
            payment_method VARCHAR(30) NOT NULL,
            payment_reference VARCHAR(255),
            payment_date DATE NOT NULL DEFAULT CURRENT_DATE,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, payment_id),
            FOREIGN KEY (organization_id, credit_account_id)
                REFERENCES credit_accounts (organization_id, credit_account_id),
            CONSTRAINT check_payment_method CHECK (
                payment_method IN ('cash', 'card', 'transfer', 'check')
            )
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_credit_payment_account ON credit_payments (organization_id, credit_account_id)"
    )
    op.execute(
        "CREATE INDEX idx_credit_payment_date ON credit_payments (organization_id, payment_date DESC)"
    )

    op.execute(
        """
        CREATE TABLE customer_segments (
            organization_id UUID NOT NULL,
            segment_id UUID NOT NULL DEFAULT gen_random_uuid(),
            customer_id UUID NOT NULL,
            segment_code VARCHAR(50) NOT NULL,
            rfm_recency INTEGER CHECK (rfm_recency BETWEEN 1 AND 5),
            rfm_frequency INTEGER CHECK (rfm_frequency BETWEEN 1 AND 5),
            rfm_monetary INTEGER CHECK (rfm_monetary BETWEEN 1 AND 5),
            rfm_score INTEGER GENERATED ALWAYS AS (rfm_recency + rfm_frequency + rfm_monetary) STORED,
            lifetime_value NUMERIC(12, 2) DEFAULT 0.00,
            average_order_value NUMERIC(12, 2) DEFAULT 0.00,
            total_orders INTEGER DEFAULT 0,
            days_since_last_purchase INTEGER,
            is_vip BOOLEAN DEFAULT false,
            is_at_risk BOOLEAN DEFAULT false,
            calculated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ,
            PRIMARY KEY (organization_id, segment_id),
            CONSTRAINT unique_org_segment_customer UNIQUE (organization_id, customer_id),
            FOREIGN KEY (organization_id, customer_id)
                REFERENCES customers (organization_id, customer_id),
            CONSTRAINT check_segment_code CHECK (
                segment_code IN ('champions', 'loyal', 'potential_loyalist', 'new', 'at_risk', 'lost')
            )
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_segment_customer ON customer_segments (organization_id, customer_id)"
    )
    op.execute("CREATE INDEX idx_segment_code ON customer_segments (organization_id, segment_code)")
    op.execute(
        "CREATE INDEX idx_segment_rfm ON customer_segments (organization_id, rfm_score DESC)"
    )
    op.execute("CREATE INDEX idx_segment_vip ON customer_segments (organization_id, is_vip)")

    op.execute(
        """
        CREATE TABLE audit_log (
            organization_id UUID NOT NULL REFERENCES organizations(organization_id),
            audit_id BIGINT GENERATED ALWAYS AS IDENTITY,
            actor_id UUID,
            actor_label VARCHAR(255) NOT NULL,
            action VARCHAR(60) NOT NULL,
            entity_type VARCHAR(60) NOT NULL,
            entity_id VARCHAR(80) NOT NULL,
            before JSONB,
            after JSONB,
            request_id VARCHAR(64),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, audit_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX idx_audit_entity ON audit_log (organization_id, entity_type, entity_id, created_at DESC)"
    )
    # Append-only even for roles that hold UPDATE/DELETE by mistake.
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )

    # organizations is keyed by organization_id too: the same policy lets a user see only its own.
    for table in TENANT_TABLES:
        tenant_rls(table)

    # The narrow cross-organization path for login: the function's owner may read staff_users of
    # every organization (a SELECT-only policy for that role), and the function returns only the
    # (organization_id, staff_user_id) of one email. The app role can execute it, not read around it.
    op.execute(
        "CREATE POLICY staff_users_login_lookup ON staff_users FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION staff_login_lookup(p_email TEXT)
        RETURNS TABLE (organization_id UUID, staff_user_id UUID)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT s.organization_id, s.staff_user_id FROM public.staff_users s
            WHERE s.email = lower(btrim(p_email))
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION staff_login_lookup(TEXT) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION staff_login_lookup(TEXT) TO {app_role()}")

    op.execute(
        """
        CREATE VIEW v_customer_360 WITH (security_invoker = true) AS
        SELECT
            c.organization_id,
            c.customer_id,
            c.first_name,
            c.last_name,
            c.email,
            c.phone,
            c.customer_type,
            c.status,
            c.loyalty_tier,
            ca.credit_account_id,
            ca.status AS credit_status,
            ca.credit_limit,
            ca.credit_used,
            ca.credit_available,
            ca.payment_term_days,
            cs.segment_code,
            cs.rfm_recency,
            cs.rfm_frequency,
            cs.rfm_monetary,
            cs.rfm_score,
            cs.lifetime_value,
            cs.is_vip,
            c.last_purchase_at,
            c.created_at
        FROM customers c
        LEFT JOIN credit_accounts ca
            ON ca.organization_id = c.organization_id AND ca.customer_id = c.customer_id
        LEFT JOIN customer_segments cs
            ON cs.organization_id = c.organization_id AND cs.customer_id = c.customer_id
        """
    )

    grant_app("organizations", "SELECT, INSERT, UPDATE")
    for table in TENANT_TABLES[1:-1]:
        grant_app(table)
    grant_app("audit_log", "SELECT, INSERT")
    grant_app("v_customer_360", "SELECT")


def downgrade():
    op.execute("DROP VIEW IF EXISTS v_customer_360")
    op.execute("DROP FUNCTION IF EXISTS staff_login_lookup(TEXT)")
    for table in reversed(TENANT_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
