-- A loan's schedule is fixed at disbursement, and its repayments are append-only, whatever code writes them.
CREATE OR REPLACE TRIGGER loan_installments_fixed BEFORE UPDATE OR DELETE ON loan_installments
  FOR EACH ROW EXECUTE FUNCTION refuse_schedule_rewrite();
CREATE OR REPLACE TRIGGER loan_installments_no_truncate BEFORE TRUNCATE ON loan_installments
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE OR REPLACE TRIGGER loan_payments_append_only BEFORE UPDATE OR DELETE ON loan_payments
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE OR REPLACE TRIGGER loan_payments_no_truncate BEFORE TRUNCATE ON loan_payments
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
