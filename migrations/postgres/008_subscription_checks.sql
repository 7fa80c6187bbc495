-- Subscriptions whose state must be asked of the payment provider: two of their
-- customer.subscription.updated events carried the same `created` second and disagreed, so the
-- order they were delivered in says nothing of which is newer. The plan takes the provider's
-- answer; the row goes in the transaction that applies it, if no tie was recorded meanwhile.
CREATE TABLE subscription_checks (
  subscription_id TEXT PRIMARY KEY,
  event_created BIGINT NOT NULL,  -- Stripe's `created` of the latest tie, Unix seconds
  requests BIGINT NOT NULL        -- ties recorded: a settle takes the row only as it read it
);
