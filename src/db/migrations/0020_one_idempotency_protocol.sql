-- One idempotency protocol for every endpoint that honours Idempotency-Key (src/http/idempotency.ts):
-- look the key up, do the work, write the key once with its answer at the end. A key row therefore
-- always holds its answer, exactly one of:
--   response        the body a request answered (deposit, withdrawal, reversal, loan repayment);
--   transaction_id  the transfer a request created: its answer is that transaction as it was created,
--                   which the journal keeps unchanged, so the answer is not stored twice;
--   problem_code    a business refusal, with problem_detail.
-- The HTTP status is the route's (every endpoint that takes a key answers 201), not the database's.
ALTER TABLE idempotency_keys ADD COLUMN transaction_id uuid REFERENCES transactions (id);

-- Transfers' answers stored by the previous release as the transaction's JSON.
UPDATE idempotency_keys SET transaction_id = (response ->> 'id')::uuid, response = NULL
 WHERE endpoint = 'POST /transactions/transfer' AND response IS NOT NULL;
-- A claim without an answer never commits under the previous release's protocol; none is kept if one did.
DELETE FROM idempotency_keys WHERE status_code IS NULL AND problem_code IS NULL;

ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_one_answer;
ALTER TABLE idempotency_keys DROP COLUMN status_code;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_one_answer
  CHECK (num_nonnulls(response, transaction_id, problem_code) = 1 AND (problem_detail IS NULL OR problem_code IS NOT NULL));

-- An answer to write under a key, as idempotency_record (src/db/sql/idempotency_record.sql) takes them.
CREATE TYPE idempotency_answer AS (
  user_id uuid,
  endpoint text,
  key text,
  fingerprint text,
  response jsonb,
  transaction_id uuid,
  problem_code text,
  problem_detail text
);

-- The claim-first protocol's functions, and the previous signatures of those that take new arguments
-- (CREATE OR REPLACE cannot change a signature; the new definitions are applied after this file).
-- IF EXISTS: a new database has no functions yet when its migrations run.
DROP FUNCTION IF EXISTS idempotency_claim(uuid, text, text, text);
DROP FUNCTION IF EXISTS idempotency_store(uuid, text, text, integer, jsonb, text, text);
DROP FUNCTION IF EXISTS idempotency_record(uuid[], text[], text[], text[], integer, jsonb[], text[], text[]);
DROP FUNCTION IF EXISTS transfer_batch(uuid[], text[], uuid[], text[], text[], bigint[], text[], text[], text[], text[], text[], text[],
                             bigint, bigint, bigint, integer, integer, integer);
