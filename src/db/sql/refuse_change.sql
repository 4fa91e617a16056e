-- Refuses any change to a row of an append-only table (the journal, the audit trail and its chain, loan
-- payments), and truncating it. The tables' triggers (src/*/sql/triggers.sql) call it.
CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
