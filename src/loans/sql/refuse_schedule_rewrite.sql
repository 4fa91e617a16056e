-- A loan's schedule is fixed at disbursement: only the paid parts of an installment change, and they
-- only grow; no installment is deleted (loan_installments_fixed, src/loans/sql/triggers.sql).
CREATE OR REPLACE FUNCTION refuse_schedule_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
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
