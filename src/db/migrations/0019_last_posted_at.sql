-- Each account's latest posting instant (NULL: never posted). Postings take their instant from the
-- app's clock, and instances' clocks differ by milliseconds; statements read an account's entries in
-- (posted_at, id) order, and their running balance_after holds only if that is the order the
-- postings were made in, which the row locks decide. So no posting may be stamped earlier than one
-- already made on any account it touches: ledger_post (src/ledger/sql/ledger_post.sql) refuses it
-- and moves this column forward; callers take the later of their clock and this column, read under
-- the lock.
ALTER TABLE accounts ADD COLUMN last_posted_at timestamptz(3);

-- From the journal: each account's latest entry.
UPDATE accounts a
   SET last_posted_at = e.posted_at
  FROM (SELECT account_id, max(posted_at) AS posted_at FROM journal_entries GROUP BY account_id) AS e
 WHERE e.account_id = a.id;
