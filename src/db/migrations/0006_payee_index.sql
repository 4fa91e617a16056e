-- The new-payee rule asks, on every transfer, whether the sender ever completed a transfer to this
-- receiver. Without this index that question scans the sender's whole history, which grows with the
-- ledger; with it, it is one index probe.
CREATE INDEX transactions_completed_payee_idx ON transactions (from_account_id, to_account_id)
  WHERE type = 'transfer' AND status = 'completed';
