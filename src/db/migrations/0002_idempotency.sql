-- Idempotency keys (IETF draft-ietf-httpapi-idempotency-key-header): one per user, endpoint and key,
-- written in the same database transaction as the money the request moved, so a crash can never
-- leave one without the other. Only completed (2xx) answers are kept: a refused request changed
-- nothing, so repeating it simply runs it again.
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
