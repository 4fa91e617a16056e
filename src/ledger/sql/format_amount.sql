-- Money as the API writes it: 1250 -> '12.50', -5 -> '-0.05' (src/money.ts formatAmount).
CREATE OR REPLACE FUNCTION format_amount(p_units bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p_units < 0 THEN '-' ELSE '' END || (abs(p_units) / 100)::text || '.' || lpad((abs(p_units) % 100)::text, 2, '0')
$$;
