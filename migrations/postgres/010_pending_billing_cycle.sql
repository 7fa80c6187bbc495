-- A billing cycle chosen for a plan a subscription pays for (POST /billing/plan/select with
-- `billing_cycle`), until the provider confirms the subscription's new price.
ALTER TABLE plans ADD COLUMN pending_billing_cycle TEXT
  CHECK (pending_billing_cycle IN ('monthly', 'yearly'));
