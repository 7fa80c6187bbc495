-- Indexes that no query reads, and that every webhook event paid for: a plan's status and type
-- are never searched by (plans are found by owner, subscription or customer), and a history row
-- names one owner, so the other owner's column needs no entry. With no index on the columns an
-- event changes (status, last_event_created, updated_at), its update of a plan is a HOT update,
-- which writes no index entry at all; the free space on each page lets it stay on its page.
DROP INDEX plans_plan_type;
DROP INDEX plans_status;
DROP INDEX plan_update_history_hospital_id;
DROP INDEX plan_update_history_individual_id;
CREATE INDEX plan_update_history_hospital_id ON plan_update_history (hospital_id)
  WHERE hospital_id IS NOT NULL;
CREATE INDEX plan_update_history_individual_id ON plan_update_history (individual_id)
  WHERE individual_id IS NOT NULL;
ALTER TABLE plans SET (fillfactor = 80);
