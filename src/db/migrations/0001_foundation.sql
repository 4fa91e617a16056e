-- Foundation: users, accounts, the double-entry ledger and the audit trail.
-- Money is BIGINT minor units everywhere. The constraints and triggers below protect it even from code
-- that bypasses the service: no negative customer balance, balanced transactions, an immutable journal.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- Stored lower-cased so that uniqueness is case-insensitive without a functional index.
  email         text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
  password_hash text NOT NULL,
  role          text NOT NULL CHECK (role IN ('customer', 'admin', 'auditor')),
  is_active     boolean NOT NULL DEFAULT true,
  created_at    timestamptz(3) NOT NULL DEFAULT now(),
  updated_at    timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX users_role_created_idx ON users (role, created_at, id);
CREATE INDEX users_created_idx ON users (created_at, id);

-- Customer accounts and the bank's own internal accounts (cash, loan fund) live in one ledger, so the
-- sum of all balances is zero. Internal accounts may go negative; customer accounts may not.
CREATE TABLE accounts (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_number text UNIQUE CHECK (account_number ~ '^[0-9]{10}$'),
  user_id        uuid REFERENCES users (id),
  system_code    text CHECK (system_code IN ('cash', 'loan_fund')),
  type           text NOT NULL CHECK (type IN ('checking', 'savings', 'internal')),
  currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  balance        bigint NOT NULL DEFAULT 0,
  -- Funds held by transfers waiting for review: part of balance, not of available balance.
  held           bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
  daily_limit    bigint CHECK (daily_limit >= 0),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
  created_at     timestamptz(3) NOT NULL DEFAULT now(),
  updated_at     timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT accounts_kind CHECK (
    (type = 'internal' AND system_code IS NOT NULL AND user_id IS NULL AND account_number IS NULL AND daily_limit IS NULL)
    OR (type <> 'internal' AND system_code IS NULL AND user_id IS NOT NULL AND account_number IS NOT NULL AND daily_limit IS NOT NULL)
  ),
  CONSTRAINT accounts_customer_not_overdrawn CHECK (type = 'internal' OR (balance >= 0 AND balance - held >= 0)),
  CONSTRAINT accounts_one_internal_per_currency UNIQUE (system_code, currency)
);
CREATE INDEX accounts_user_idx ON accounts (user_id, created_at, id);
CREATE INDEX accounts_created_idx ON accounts (created_at, id);

-- A transaction is the business event; its journal entries are the money. from/to name the accounts
-- for reading (internal ones included); the entries are what balances are made of.
CREATE TABLE transactions (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type            text NOT NULL CHECK (type IN ('transfer', 'deposit', 'withdrawal', 'loan_disbursement', 'loan_repayment', 'reversal')),
  status          text NOT NULL CHECK (status IN ('completed', 'pending_review', 'rejected')),
  amount          bigint NOT NULL CHECK (amount > 0),
  currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  from_account_id uuid NOT NULL REFERENCES accounts (id),
  to_account_id   uuid NOT NULL REFERENCES accounts (id),
  description     text CHECK (length(description) <= 500),
  created_by      uuid REFERENCES users (id),
  created_at      timestamptz(3) NOT NULL DEFAULT now(),
  review_reasons  text[] NOT NULL DEFAULT '{}',
  reviewed_by     uuid REFERENCES users (id),
  reviewed_at     timestamptz(3),
  review_note     text,
  -- At most one reversal per original, by constraint rather than by a check-then-act.
  reverses_id     uuid UNIQUE REFERENCES transactions (id),
  CHECK (from_account_id <> to_account_id)
);
CREATE INDEX transactions_created_idx ON transactions (created_at DESC, id DESC);
CREATE INDEX transactions_from_created_idx ON transactions (from_account_id, created_at DESC, id DESC);
CREATE INDEX transactions_to_created_idx ON transactions (to_account_id, created_at DESC, id DESC);
CREATE INDEX transactions_pending_idx ON transactions (created_at, id) WHERE status = 'pending_review';

CREATE TABLE journal_entries (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  transaction_id uuid NOT NULL REFERENCES transactions (id),
  account_id     uuid NOT NULL REFERENCES accounts (id),
  amount         bigint NOT NULL CHECK (amount <> 0),
  balance_after  bigint NOT NULL,
  posted_at      timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_account_idx ON journal_entries (account_id, posted_at, id);
CREATE INDEX journal_entries_transaction_idx ON journal_entries (transaction_id);

-- The journal is append-only.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Every transaction's entries sum to zero, checked at commit (after all of its entries are written).
CREATE FUNCTION assert_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  total bigint;
BEGIN
  SELECT sum(amount) INTO total FROM journal_entries WHERE transaction_id = NEW.transaction_id;
  IF total <> 0 THEN
    RAISE EXCEPTION 'transaction % is unbalanced by %', NEW.transaction_id, total USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION assert_transaction_balanced();

-- What a transaction moved never changes; only its review state may.
CREATE FUNCTION refuse_transaction_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER transactions_immutable BEFORE UPDATE OR DELETE ON transactions
  FOR EACH ROW EXECUTE FUNCTION refuse_transaction_rewrite();
CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The audit trail: appended in the same database transaction as the change it records. The hash chain
-- is sealed over it after commit (a later migration), so appending never serialises the bank.
CREATE TABLE audit_log (
  entry_no    bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  at          timestamptz(3) NOT NULL DEFAULT clock_timestamp(),
  actor_id    uuid REFERENCES users (id),
  actor_role  text CHECK (actor_role IN ('customer', 'admin', 'auditor', 'system')),
  action      text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
  target_type text,
  target_id   text,
  ip          text,
  request_id  text,
  details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at, entry_no);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, at);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
