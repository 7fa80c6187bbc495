-- A token drawn anew each time a tie is recorded on a check: a settle takes the check only if it
-- still carries the token it read, so no tie recorded while the provider was asked (nor a check
-- made again after another settle took it) is taken by an older answer.
ALTER TABLE subscription_checks ADD COLUMN token BIGINT NOT NULL DEFAULT 0;
