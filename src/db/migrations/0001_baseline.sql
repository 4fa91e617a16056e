-- The schema as the migrations 0001 to 0015 of the first releases left it, folded into one file: users,
-- accounts, the double-entry ledger, idempotency keys, sessions, the audit trail and its hash chain, and
-- loans. A database migrated by those releases is taken as having run this file (src/db/migrate.ts).
--
-- Money is BIGINT minor units everywhere. The constraints here, and the triggers declared beside their
-- functions (src/*/sql/triggers.sql), protect it even from code that bypasses the service: no negative
-- customer balance, balanced transactions, an immutable journal and audit trail.

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
  system_code    text CHECK (system_code IN ('cash', 'loan_fund', 'interest_income')),
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
  -- At most one reversal per original (transactions_reverses_idx), by constraint rather than by a
  -- check-then-act.
  reverses_id     uuid REFERENCES transactions (id),
  CHECK (from_account_id <> to_account_id)
);
CREATE INDEX transactions_created_idx ON transactions (created_at DESC, id DESC);
CREATE INDEX transactions_from_created_idx ON transactions (from_account_id, created_at DESC, id DESC);
CREATE INDEX transactions_to_created_idx ON transactions (to_account_id, created_at DESC, id DESC);
CREATE INDEX transactions_pending_idx ON transactions (created_at, id) WHERE status = 'pending_review';
-- Partial: most transactions reverse nothing, and an index entry per transaction costs every insert.
CREATE UNIQUE INDEX transactions_reverses_idx ON transactions (reverses_id) WHERE reverses_id IS NOT NULL;
-- The new-payee rule asks, on every transfer, whether the sender ever completed a transfer to this
-- receiver: one probe of this index, instead of a scan of the sender's history.
CREATE INDEX transactions_completed_payee_idx ON transactions (from_account_id, to_account_id)
  WHERE type = 'transfer' AND status = 'completed';

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

-- The audit trail: appended in the same database transaction as the change it records. The hash chain
-- (audit_chain) is sealed over it after commit, so appending never serialises the bank.
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
  details     jsonb NOT NULL DEFAULT '{}',
  -- The id of the transaction that wrote the entry. An id below a snapshot's xmin belongs to a
  -- transaction that has finished, so the sealer takes, in order, every entry with an id in
  -- [sealed_below, xmin): all of them are committed (or never will be), none can appear there later,
  -- and nothing needs an anti-join against the chain.
  xact_id     bigint NOT NULL DEFAULT (pg_current_xact_id()::text)::bigint
);
CREATE INDEX audit_log_at_idx ON audit_log (at, entry_no);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, at);
CREATE INDEX audit_log_xact_idx ON audit_log (xact_id, entry_no);
CREATE INDEX audit_log_action_idx ON audit_log (action, at);

-- Idempotency keys (IETF draft-ietf-httpapi-idempotency-key-header): one per user, endpoint and key,
-- written in the same database transaction as the money the request moved, so a crash can never
-- leave one without the other.
CREATE TABLE idempotency_keys (
  user_id     uuid NOT NULL REFERENCES users (id),
  endpoint    text NOT NULL,
  key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  fingerprint text NOT NULL,
  status_code integer,
  response    jsonb,
  created_at  timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, endpoint, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- A session is one login: the family of refresh tokens that rotate from it and the access tokens they
-- were issued with. Revoking a session (logout, reuse of a spent refresh token, password change,
-- disabling the user) stops all of them at once.
CREATE TABLE sessions (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES users (id),
  created_at     timestamptz(3) NOT NULL DEFAULT now(),
  revoked_at     timestamptz(3),
  revoked_reason text
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Every access token's jti is registered at issue, so a token that was never issued (a forged one
-- signed with a leaked key, say) or was revoked is refused with one primary-key lookup.
CREATE TABLE access_tokens (
  jti        uuid PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id),
  user_id    uuid NOT NULL REFERENCES users (id),
  expires_at timestamptz(3) NOT NULL,
  revoked_at timestamptz(3)
);
CREATE INDEX access_tokens_session_idx ON access_tokens (session_id);
CREATE INDEX access_tokens_expires_idx ON access_tokens (expires_at);

-- Refresh tokens are random and stored only as SHA-256 hashes; each may be used once.
CREATE TABLE refresh_tokens (
  token_hash text PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  expires_at timestamptz(3) NOT NULL,
  used_at    timestamptz(3)
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Consecutive failed logins per email, for the brute-force lockout when no Redis is configured.
CREATE TABLE login_failures (
  email        text PRIMARY KEY,
  failures     integer NOT NULL,
  locked_until timestamptz(3),
  updated_at   timestamptz(3) NOT NULL DEFAULT now()
);

-- The tamper-evident chain over the audit log, sealed after commit so that appending an entry never
-- waits for a chain lock (which would let one transaction commit at a time).
CREATE TABLE audit_chain (
  sequence  bigint PRIMARY KEY CHECK (sequence > 0),
  entry_id  uuid NOT NULL UNIQUE REFERENCES audit_log (id),
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash      text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
  sealed_at timestamptz(3) NOT NULL DEFAULT now()
);

-- One row: where the chain ends. Sealers lock it (SKIP LOCKED), so one seals at a time across instances.
CREATE TABLE audit_chain_head (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  sequence     bigint NOT NULL,
  hash         text NOT NULL,
  sealed_below bigint NOT NULL
);
INSERT INTO audit_chain_head (sequence, hash, sealed_below) VALUES (0, repeat('0', 64), 0);

-- Loans: applications, their decisions, the schedule fixed at disbursement, and the repayments.
-- Money is BIGINT minor units. The ledger sees a loan only through postings: the disbursement moves
-- the principal from the bank's loan fund to the borrower; a repayment moves the principal part back
-- to the loan fund and the interest part to the bank's interest income.

CREATE TABLE loans (
  id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id                     uuid NOT NULL REFERENCES users (id),
  account_id                  uuid NOT NULL REFERENCES accounts (id),
  principal                   bigint NOT NULL CHECK (principal > 0),
  -- Hundredths of a percent a year (12.00 % is 1200), fixed at application: a later change of
  -- LOAN_ANNUAL_RATE never reprices a loan already quoted.
  annual_rate_bp              integer NOT NULL CHECK (annual_rate_bp BETWEEN 0 AND 10000),
  term_months                 integer NOT NULL CHECK (term_months BETWEEN 1 AND 360),
  monthly_installment         bigint NOT NULL CHECK (monthly_installment > 0),
  total_payable               bigint NOT NULL CHECK (total_payable >= principal),
  status                      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'rejected', 'paid_off')),
  purpose                     text CHECK (length(purpose) <= 500),
  created_at                  timestamptz(3) NOT NULL DEFAULT now(),
  decided_by                  uuid REFERENCES users (id),
  decided_at                  timestamptz(3),
  decision_note               text CHECK (length(decision_note) <= 500),
  -- One loan, one disbursement: the column holds one transaction, and no transaction serves two loans.
  disbursement_transaction_id uuid UNIQUE REFERENCES transactions (id),
  CONSTRAINT loans_decided CHECK ((status = 'pending') = (decided_by IS NULL AND decided_at IS NULL)),
  CONSTRAINT loans_disbursed CHECK ((status IN ('active', 'paid_off')) = (disbursement_transaction_id IS NOT NULL))
);
CREATE INDEX loans_created_idx ON loans (created_at DESC, id DESC);
CREATE INDEX loans_user_created_idx ON loans (user_id, created_at DESC, id DESC);

CREATE TABLE loan_installments (
  loan_id        uuid NOT NULL REFERENCES loans (id),
  number         integer NOT NULL CHECK (number BETWEEN 1 AND 360),
  due_date       date NOT NULL,
  installment    bigint NOT NULL CHECK (installment > 0),
  principal      bigint NOT NULL CHECK (principal >= 0),
  interest       bigint NOT NULL CHECK (interest >= 0),
  balance_after  bigint NOT NULL CHECK (balance_after >= 0),
  paid_principal bigint NOT NULL DEFAULT 0 CHECK (paid_principal BETWEEN 0 AND principal),
  paid_interest  bigint NOT NULL DEFAULT 0 CHECK (paid_interest BETWEEN 0 AND interest),
  CHECK (installment = principal + interest),
  CONSTRAINT loan_installments_number UNIQUE (loan_id, number)
);

-- Each repayment and the ledger transaction that moved its money; what it paid of principal and of interest.
CREATE TABLE loan_payments (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  loan_id        uuid NOT NULL REFERENCES loans (id),
  transaction_id uuid NOT NULL UNIQUE REFERENCES transactions (id),
  amount         bigint NOT NULL CHECK (amount > 0),
  principal      bigint NOT NULL CHECK (principal >= 0),
  interest       bigint NOT NULL CHECK (interest >= 0),
  created_at     timestamptz(3) NOT NULL DEFAULT now(),
  CHECK (amount = principal + interest)
);
CREATE INDEX loan_payments_loan_idx ON loan_payments (loan_id, created_at);

-- What each account has sent per UTC day, against its daily limit: kept by a trigger on transactions
-- (src/transfers/sql/daily_outflows_track.sql), which sees every insert and every change of status (a
-- held transfer rejected stops counting) whatever code makes it, so the limit reads one row instead of
-- summing the day's transfers.
CREATE TABLE daily_outflows (
  account_id uuid   NOT NULL REFERENCES accounts (id),
  day        date   NOT NULL,
  amount     bigint NOT NULL CHECK (amount >= 0),
  PRIMARY KEY (account_id, day)
);
