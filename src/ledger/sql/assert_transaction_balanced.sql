-- Every transaction's entries sum to zero, checked at commit, once all of them are written (the
-- deferred constraint trigger journal_entries_balanced, src/ledger/sql/triggers.sql).
CREATE OR REPLACE FUNCTION assert_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  total bigint;
BEGIN
  SELECT sum(amount) INTO total FROM journal_entries WHERE transaction_id = NEW.transaction_id;
  IF total <> 0 THEN
    RAISE EXCEPTION 'transaction % is unbalanced by %', NEW.transaction_id, total USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
