-- Refusals are answers too. A request refused for a business reason (insufficient_funds,
-- daily_limit_exceeded, account_not_active, account_not_found, currency_mismatch, not_found,
-- already_reversed, overpayment, ...) keeps its refusal under its key, and a repeat replays it even once
-- the cause is gone: a key has one answer, its first. A refusal is kept as the service's error code and
-- detail, not as HTTP: the service maps the code to its status when it replays it. A row holds a success
-- (status_code and response), a refusal (problem_code and problem_detail), or, only inside the
-- transaction that claimed it, neither. NOT VALID: rows stored before hold no refusal, so there is
-- nothing to check, and the table is not read under the ALTER's lock.
ALTER TABLE idempotency_keys
  ADD COLUMN problem_code text,
  ADD COLUMN problem_detail text,
  ADD CONSTRAINT idempotency_keys_one_answer CHECK (status_code IS NULL OR problem_code IS NULL) NOT VALID;

-- Their new definitions (src/http/sql/) take the refusal; CREATE OR REPLACE cannot change a signature.
DROP FUNCTION IF EXISTS idempotency_store(uuid, text, text, integer, jsonb);
DROP FUNCTION IF EXISTS idempotency_record(uuid[], text[], text[], text[], integer, jsonb[]);
