-- Keeps daily_outflows, what each account has sent per UTC day, as transfers are inserted and change
-- status (transactions_daily_outflows, src/transfers/sql/triggers.sql): a transfer completed or pending
-- review counts on its day; one that is rejected stops counting.
CREATE OR REPLACE FUNCTION daily_outflows_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.type = 'transfer' AND OLD.status IN ('completed', 'pending_review') THEN
    UPDATE daily_outflows SET amount = amount - OLD.amount
     WHERE account_id = OLD.from_account_id AND day = (OLD.created_at AT TIME ZONE 'UTC')::date;
  END IF;
  IF NEW.type = 'transfer' AND NEW.status IN ('completed', 'pending_review') THEN
    INSERT INTO daily_outflows AS d (account_id, day, amount)
    VALUES (NEW.from_account_id, (NEW.created_at AT TIME ZONE 'UTC')::date, NEW.amount)
    ON CONFLICT (account_id, day) DO UPDATE SET amount = d.amount + EXCLUDED.amount;
  END IF;
  RETURN NULL;
END $$;
