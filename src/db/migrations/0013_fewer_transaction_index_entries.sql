-- Fewer index entries for every transaction row: 7 became 5 for a completed transfer. Each index entry
-- is work inside the transfer's statement and a page to keep in memory; one of these two went to a
-- page chosen by the sender's account, so random across a large index (BENCHMARKS.md).
--
-- 1. At most one reversal per original stays a unique key, but only over the rows that reverse
--    something: the UNIQUE constraint of 0001 indexed every transaction, each with a NULL that no
--    uniqueness check ever compares. The reversal service maps 23505 to already_reversed whatever the
--    key's name; the listing's "reversed_by" join (reverses_id = id) implies NOT NULL, so the planner
--    uses the partial index for it.
ALTER TABLE transactions DROP CONSTRAINT transactions_reverses_id_key;
CREATE UNIQUE INDEX transactions_reverses_idx ON transactions (reverses_id) WHERE reverses_id IS NOT NULL;

-- 2. The velocity rule's read (transfer_batch_begin, 0010) walks a sender's transactions newest first
--    within the window and stops at p_velocity_count. transactions_from_created_idx (0001:
--    from_account_id, created_at DESC, id DESC) gives the same walk: it serves the statement's index
--    condition and order, and the rule's predicate on type and status is checked on the row, which the
--    walk reads in any case (it must see whether each row is visible). Keeping 0008's partial copy of
--    that index cost an index entry per transfer.
DROP INDEX transactions_sender_counted_idx;
