-- What a transaction moved never changes, and no transaction is deleted; only its review state (status,
-- reviewer, note) may change (src/ledger/sql/triggers.sql).
CREATE OR REPLACE FUNCTION refuse_transaction_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'transactions are never deleted' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.id, NEW.type, NEW.amount, NEW.currency, NEW.from_account_id, NEW.to_account_id, NEW.created_by, NEW.created_at, NEW.reverses_id)
     IS DISTINCT FROM (OLD.id, OLD.type, OLD.amount, OLD.currency, OLD.from_account_id, OLD.to_account_id, OLD.created_by, OLD.created_at, OLD.reverses_id) THEN
    RAISE EXCEPTION 'transaction % may change only its review state', OLD.id USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
