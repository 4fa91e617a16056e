-- The status a transfer is created with: held for review when a risk rule gave a reason
-- (transfer_review_reasons), completed otherwise. transfer_batch creates transfers by it, and
-- transfers_as_created reads back a transfer's status at creation by it. A SQL function that
-- PostgreSQL inlines.
CREATE OR REPLACE FUNCTION new_transfer_status(p_review_reasons text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(p_review_reasons) = 0 THEN 'completed' ELSE 'pending_review' END
$$;
