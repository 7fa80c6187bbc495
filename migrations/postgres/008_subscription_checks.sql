-- Subscriptions whose state must be asked of the payment provider: two of their
-- customer.subscription.updated events carried the same `created` second and disagreed, so the
-- order they were delivered in says nothing of which is newer. The plan takes the provider's
-- answer, as an event of that second would be; the row goes once that is applied.
CREATE TABLE subscription_checks (
  subscription_id TEXT PRIMARY KEY,
  event_created BIGINT NOT NULL  -- Stripe's `created` of the tied events, Unix seconds
);
