-- Payments: the webhook inbox (each Stripe event stored once, by its id) and what plans need
-- to follow a subscription. CHECKs compare with `=` and OR: SQLite 3.40 evaluates `x IN (...)`
-- in a CHECK with a temporary table on every write, which cost the webhook writer half its time.
CREATE TABLE webhook_events (
  event_id TEXT PRIMARY KEY,
  event_type TEXT NOT NULL,
  created INTEGER NOT NULL,  -- Stripe's `created`, Unix seconds
  payload TEXT NOT NULL,     -- the raw bytes as signed, for replaying a failed event
  status TEXT NOT NULL CHECK (status = 'processed' OR status = 'failed'),
  attempts INTEGER NOT NULL,
  last_error TEXT,
  received_at TEXT NOT NULL,
  processed_at TEXT
);
CREATE INDEX webhook_events_failed ON webhook_events (received_at) WHERE status = 'failed';

-- SQLite cannot change a table's CHECKs in place: the plans table is rebuilt with its new columns.
CREATE TABLE plans_v2 (
  id TEXT PRIMARY KEY,
  hospital_id TEXT REFERENCES hospitals (id),
  individual_id TEXT REFERENCES individuals (id),
  plan_type TEXT NOT NULL
    CHECK (plan_type = 'lite' OR plan_type = 'pro' OR plan_type = 'hobby' OR plan_type = 'basic'),
  status TEXT NOT NULL
    CHECK (status = 'active' OR status = 'inactive' OR status = 'suspended'
           OR status = 'cancelled' OR status = 'expired'),
  max_agents INTEGER NOT NULL CHECK (max_agents >= 0),
  selected_services TEXT NOT NULL,
  stripe_customer_id TEXT,
  stripe_subscription_id TEXT,
  billing_cycle TEXT CHECK (billing_cycle = 'monthly' OR billing_cycle = 'yearly'),
  pending_plan_type TEXT,
  cancel_at_period_end INTEGER NOT NULL DEFAULT 0
    CHECK (cancel_at_period_end = 0 OR cancel_at_period_end = 1),
  last_event_created INTEGER,  -- Stripe's `created` of the newest event applied to the plan
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  CHECK ((hospital_id IS NULL) <> (individual_id IS NULL))
);
INSERT INTO plans_v2 (id, hospital_id, individual_id, plan_type, status, max_agents,
                      selected_services, stripe_customer_id, stripe_subscription_id, created_at,
                      updated_at)
  SELECT id, hospital_id, individual_id, plan_type, status, max_agents, selected_services,
         stripe_customer_id, stripe_subscription_id, created_at, updated_at
  FROM plans;
DROP TABLE plans;
ALTER TABLE plans_v2 RENAME TO plans;
CREATE UNIQUE INDEX plans_hospital_id ON plans (hospital_id);
CREATE UNIQUE INDEX plans_individual_id ON plans (individual_id);
CREATE INDEX plans_plan_type ON plans (plan_type);
CREATE INDEX plans_status ON plans (status);
CREATE INDEX plans_stripe_subscription_id ON plans (stripe_subscription_id);
CREATE INDEX plans_stripe_customer_id ON plans (stripe_customer_id);

-- Looked up by event id through webhook_events; an index here cost the webhook writer a quarter
-- of its throughput (one more random page per event).
DROP INDEX stripe_audit_event_id;
