-- The seed's collections as tables. Timestamps are ISO 8601 UTC text with microseconds;
-- money is integer cents; service lists are comma-separated ServiceType names.
CREATE TABLE hospitals (
  id TEXT PRIMARY KEY,
  name TEXT,
  created_at TEXT NOT NULL
);

CREATE TABLE individuals (
  id TEXT PRIMARY KEY,
  name TEXT,
  created_at TEXT NOT NULL
);

CREATE TABLE assistants (
  id TEXT PRIMARY KEY,
  hospital_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE plans (
  id TEXT PRIMARY KEY,
  hospital_id TEXT REFERENCES hospitals (id),
  individual_id TEXT REFERENCES individuals (id),
  plan_type TEXT NOT NULL CHECK (plan_type IN ('lite', 'pro', 'hobby', 'basic')),
  status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'suspended', 'cancelled', 'expired')),
  max_agents INTEGER NOT NULL CHECK (max_agents >= 0),
  selected_services TEXT NOT NULL,
  stripe_customer_id TEXT,
  stripe_subscription_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  CHECK ((hospital_id IS NULL) <> (individual_id IS NULL))
);
-- The seed indexes hospital_id without uniqueness; a hospital has one current plan, so it is unique here.
CREATE UNIQUE INDEX plans_hospital_id ON plans (hospital_id);
CREATE UNIQUE INDEX plans_individual_id ON plans (individual_id);
CREATE INDEX plans_plan_type ON plans (plan_type);
CREATE INDEX plans_status ON plans (status);

CREATE TABLE plan_update_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  plan_id TEXT NOT NULL,
  hospital_id TEXT,
  individual_id TEXT,
  changed_by TEXT NOT NULL,
  changed_at TEXT NOT NULL,
  from_plan_type TEXT,
  to_plan_type TEXT NOT NULL,
  from_status TEXT,
  to_status TEXT NOT NULL,
  from_services TEXT NOT NULL,
  to_services TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX plan_update_history_hospital_id ON plan_update_history (hospital_id);
CREATE INDEX plan_update_history_individual_id ON plan_update_history (individual_id);

CREATE TABLE payments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  stripe_checkout_session_id TEXT,
  stripe_customer_id TEXT,
  stripe_subscription_id TEXT,
  stripe_invoice_id TEXT,
  stripe_payment_intent_id TEXT,
  stripe_charge_id TEXT,
  role TEXT NOT NULL,
  role_entity_id TEXT NOT NULL,
  plan_type TEXT,
  cycle TEXT,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  net_amount INTEGER,
  fee_amount INTEGER,
  payment_method TEXT,
  paid_at TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX payments_role_entity_id ON payments (role, role_entity_id);
CREATE UNIQUE INDEX payments_stripe_invoice_id ON payments (stripe_invoice_id);

CREATE TABLE stripe_audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  note TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE INDEX stripe_audit_event_id ON stripe_audit (event_id);
