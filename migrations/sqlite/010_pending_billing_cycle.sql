-- A billing cycle chosen for a plan a subscription pays for (POST /billing/plan/select with
-- `billing_cycle`), until the provider confirms the subscription's new price. (`=` and OR: see
-- 002.)
ALTER TABLE plans ADD COLUMN pending_billing_cycle TEXT
  CHECK (pending_billing_cycle = 'monthly' OR pending_billing_cycle = 'yearly');
