-- What is known of an owner's subscriptions other than the one their plan follows: a second one
-- paid for while the first already paid (two checkouts opened at once), one the plan stopped
-- following, one told of before its checkout's completion. The plan goes on with the newest that
-- has not ended when its own ends, instead of ending while that one is still charged; one that
-- has ended is never taken up again.
CREATE TABLE other_subscriptions (
  id TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role = 'hospital' OR role = 'individual'),
  role_entity_id TEXT NOT NULL,
  status TEXT NOT NULL,  -- Stripe's, as the newest event about it said
  plan_type TEXT NOT NULL,
  billing_cycle TEXT NOT NULL CHECK (billing_cycle = 'monthly' OR billing_cycle = 'yearly'),
  created INTEGER NOT NULL,            -- Stripe's `created` of the first event that told of it
  last_event_created INTEGER NOT NULL  -- and of the newest
);
CREATE INDEX other_subscriptions_owner ON other_subscriptions (role, role_entity_id);
