-- Time-ordered ids (UUIDv7, RFC 9562) for transactions: consecutive transactions' ids sort together, so
-- the indexes keyed by them (transactions' primary key, the journal's and the audit log's by
-- transaction) are appended to at one end instead of at a random page of a large index (on a
-- 1,000,000-entry ledger the 32-connection load ran at 0.86 to 0.89 of the empty ledger's rate with
-- random ids, 0.93 with time-ordered ones: BENCHMARKS.md). Every writer of transactions names it
-- (src/ledger/post.ts, transfer_batch); the column's default is only a fallback. Made in the
-- database: WebCrypto's random bytes, one call at a time, cost the server 4 to 5 % of its CPU at 8
-- connections. A distributed SQL engine would want random ids or a hash-sharded key instead
-- (docs/scaling.md).
--
-- The first 48 bits are the Unix time in milliseconds; the 12 bits after the version are the fraction of
-- the millisecond, in 4096ths (RFC 9562 section 6.2, method 3), so that ids made a microsecond or more
-- apart sort in the order they were made; the rest is gen_random_uuid()'s random bits and variant.
-- PostgreSQL 18 has uuidv7(), made the same way; this service runs on 15 too. PL/pgSQL, whose
-- statement is planned once per session (a SQL function taking the one clock reading twice could not be
-- inlined, and would be planned on every call).
CREATE OR REPLACE FUNCTION uuid_v7() RETURNS uuid LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
  -- Milliseconds since the epoch, the microseconds as its fraction.
  at numeric := extract(epoch FROM clock_timestamp()) * 1000;
BEGIN
  RETURN (lpad(to_hex(floor(at)::bigint), 12, '0') || '7' || lpad(to_hex(floor((at - floor(at)) * 4096)::integer), 3, '0')
          || substr(encode(uuid_send(gen_random_uuid()), 'hex'), 17))::uuid;
END $$;
