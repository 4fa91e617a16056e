-- The two statements a batch of transfers took before transfer_batch; nothing calls them.
DROP FUNCTION IF EXISTS transfer_batch_begin(uuid[], text[], text[], text[], text[], text[], integer, integer);
DROP FUNCTION IF EXISTS transfer_batch_finish(jsonb, jsonb);

-- Every writer of transactions names a time-ordered id (uuid_v7, src/ledger/sql/uuid_v7.sql); the
-- column's default is only a fallback for a writer that names none, and names no function of ours, so
-- the schema does not depend on the functions that are applied after it.
ALTER TABLE transactions ALTER COLUMN id SET DEFAULT gen_random_uuid();
