-- The risk rules (README.md, Configuration), in the order their reasons are reported. A rule whose
-- setting is 0 is off (REVIEW_THRESHOLD cannot be 0). The history is the sender's, read under its lock:
-- whether it ever completed a transfer to this receiver, and how many transfers it sent (completed or
-- pending review) within the velocity window. A new rule is one more element here.
CREATE OR REPLACE FUNCTION transfer_review_reasons(
  p_amount bigint, p_sender_opened_at timestamptz, p_now timestamptz,
  p_paid_receiver_before boolean, p_recent_transfers bigint,
  p_review_threshold bigint, p_new_payee_amount bigint, p_new_account_amount bigint, p_new_account_hours integer,
  p_velocity_count integer, p_velocity_minutes integer
) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN p_amount >= p_review_threshold THEN 'amount_threshold' END,
    CASE WHEN p_new_payee_amount > 0 AND p_amount >= p_new_payee_amount AND NOT p_paid_receiver_before THEN 'new_payee' END,
    CASE WHEN p_new_account_amount > 0 AND p_new_account_hours > 0 AND p_amount >= p_new_account_amount
              AND p_now - p_sender_opened_at < make_interval(hours => p_new_account_hours) THEN 'new_account' END,
    CASE WHEN p_velocity_count > 0 AND p_velocity_minutes > 0 AND p_recent_transfers >= p_velocity_count THEN 'velocity' END
  ], NULL)
$$;
