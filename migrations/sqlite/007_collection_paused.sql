-- Whether the subscription the plan follows has its collection paused (Stripe's
-- pause_collection): its plan is suspended until it is resumed, and an invoice paid meanwhile
-- (one marked uncollectible, paid by hand) does not reactivate it.
ALTER TABLE plans ADD COLUMN collection_paused INTEGER NOT NULL DEFAULT 0
  CHECK (collection_paused = 0 OR collection_paused = 1);
