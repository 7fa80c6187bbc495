-- Subscriptions an owner pays for besides the one their plan follows (a second checkout paid for
-- while the first already paid): the plan goes on with the newest when its own subscription
-- ends, instead of ending while one of them is still charged.
CREATE TABLE extra_subscriptions (
  id TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('hospital', 'individual')),
  role_entity_id TEXT NOT NULL,
  plan_type TEXT NOT NULL,
  billing_cycle TEXT NOT NULL CHECK (billing_cycle IN ('monthly', 'yearly')),
  created BIGINT NOT NULL  -- Stripe's `created` of the checkout completion that paid for it
);
CREATE INDEX extra_subscriptions_owner ON extra_subscriptions (role, role_entity_id);
