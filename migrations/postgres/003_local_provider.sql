-- The local payment provider's objects (payments/local), so that a restart keeps its customers,
-- subscriptions and invoices and delivers the events it had not delivered yet. `account` is
-- LOCAL_PAYMENTS_ACCOUNT: services that share a database keep their local payments apart.
CREATE TABLE local_provider_objects (
  seq BIGSERIAL PRIMARY KEY,  -- the order objects were first saved (lists are newest first)
  account TEXT NOT NULL,
  kind TEXT NOT NULL,  -- checkout_session, customer, subscription, invoice, portal_session, event, clock
  id TEXT NOT NULL,
  version BIGINT NOT NULL,
  data TEXT NOT NULL,  -- the object as JSON; an event's payload
  UNIQUE (account, kind, id)
);
