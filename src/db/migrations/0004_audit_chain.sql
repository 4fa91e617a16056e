-- The tamper-evident chain over the audit log, sealed after commit so that appending an entry never
-- waits for a chain lock (which would let one transaction commit at a time).
--
-- Each entry records the id of the transaction that wrote it. A transaction id below the snapshot's
-- xmin belongs to a transaction that has finished, so the sealer can take, in order, every entry
-- with an id in [sealed_below, xmin): all of them are committed (or never will be), none can appear
-- there later, and nothing needs an anti-join against the chain.
ALTER TABLE audit_log ADD COLUMN xact_id bigint NOT NULL DEFAULT (pg_current_xact_id()::text)::bigint;
CREATE INDEX audit_log_xact_idx ON audit_log (xact_id, entry_no);
CREATE INDEX audit_log_action_idx ON audit_log (action, at);

CREATE TABLE audit_chain (
  sequence  bigint PRIMARY KEY CHECK (sequence > 0),
  entry_id  uuid NOT NULL UNIQUE REFERENCES audit_log (id),
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash      text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
  sealed_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- One row: where the chain ends. Sealers lock it (SKIP LOCKED), so one seals at a time across instances.
CREATE TABLE audit_chain_head (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  sequence     bigint NOT NULL,
  hash         text NOT NULL,
  sealed_below bigint NOT NULL
);
INSERT INTO audit_chain_head (sequence, hash, sealed_below) VALUES (0, repeat('0', 64), 0);
