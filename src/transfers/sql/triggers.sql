-- Each account's outflow per UTC day follows every transfer that is inserted or changes status.
CREATE OR REPLACE TRIGGER transactions_daily_outflows
  AFTER INSERT OR UPDATE OF type, status, amount, from_account_id, created_at ON transactions
  FOR EACH ROW EXECUTE FUNCTION daily_outflows_track();
