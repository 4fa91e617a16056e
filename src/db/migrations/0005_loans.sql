-- Loans: applications, their decisions, the schedule fixed at disbursement, and the repayments.
-- Money is BIGINT minor units. The ledger sees a loan only through postings: the disbursement moves
-- the principal from the bank's loan fund to the borrower; a repayment moves the principal part back
-- to the loan fund and the interest part to the bank's interest income.

-- Interest received is the bank's income: an internal account of its own, one per currency like the others.
ALTER TABLE accounts DROP CONSTRAINT accounts_system_code_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_system_code_check CHECK (system_code IN ('cash', 'loan_fund', 'interest_income'));

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

-- The schedule is fixed at disbursement: only the paid parts change, and they only grow.
CREATE FUNCTION refuse_schedule_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'loan installments are never deleted' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.loan_id, NEW.number, NEW.due_date, NEW.installment, NEW.principal, NEW.interest, NEW.balance_after)
     IS DISTINCT FROM (OLD.loan_id, OLD.number, OLD.due_date, OLD.installment, OLD.principal, OLD.interest, OLD.balance_after)
     OR NEW.paid_principal < OLD.paid_principal OR NEW.paid_interest < OLD.paid_interest THEN
    RAISE EXCEPTION 'installment % of loan % may only have more of it paid', OLD.number, OLD.loan_id USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER loan_installments_fixed BEFORE UPDATE OR DELETE ON loan_installments
  FOR EACH ROW EXECUTE FUNCTION refuse_schedule_rewrite();
CREATE TRIGGER loan_installments_no_truncate BEFORE TRUNCATE ON loan_installments
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

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
CREATE TRIGGER loan_payments_append_only BEFORE UPDATE OR DELETE ON loan_payments
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER loan_payments_no_truncate BEFORE TRUNCATE ON loan_payments
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
