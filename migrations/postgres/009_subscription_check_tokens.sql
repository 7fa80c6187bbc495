-- A token drawn anew each time a tie is recorded on a check: a settle takes the check only if it
-- still carries the token it read, so no tie recorded while the provider was asked (nor a check
-- made again after another settle took it) is taken by an older answer. The table is made anew,
-- so that a database that applied an unreleased draft of 008 (with a `requests` column) ends the
-- same as every other.
CREATE TABLE subscription_checks_new (
  subscription_id TEXT PRIMARY KEY,
  event_created BIGINT NOT NULL,  -- Stripe's `created` of the latest tie, Unix seconds
  token BIGINT NOT NULL
);
INSERT INTO subscription_checks_new (subscription_id, event_created, token)
  SELECT subscription_id, event_created, 0 FROM subscription_checks;
DROP TABLE subscription_checks;
ALTER TABLE subscription_checks_new RENAME TO subscription_checks;
