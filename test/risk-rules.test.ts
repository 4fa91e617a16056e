import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import type { RiskSettings } from '../src/risk/rules.js';
import { createTestDatabase, engine, type TestDatabase } from './helpers/database.js';

/**
 * The risk rules live in the database, in transfer_review_reasons (migration 0015), where transfer_batch
 * applies them to each transfer under the sender's lock. Here they are called alone, with made-up facts,
 * at the edges of every setting; test/risk.test.ts and test/group-commit.test.ts see them through
 * transfers.
 */
const HOUR = 3_600_000;
const NOW = new Date('2024-06-15T12:00:00.000Z');
const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';

/** The documented defaults, in minor units: 10000.00, 5000.00, 2000.00 within 24 h, 20 in 60 min. */
const DEFAULTS: RiskSettings = {
  reviewThreshold: 1_000_000n,
  riskNewPayeeAmount: 500_000n,
  riskNewAccountAmount: 200_000n,
  riskNewAccountHours: 24,
  riskVelocityCount: 20,
  riskVelocityMinutes: 60,
};

/** Settings with every rule but the named ones out of the way (the threshold cannot be 0: set it above the largest amount). */
function only(overrides: Partial<RiskSettings>): RiskSettings {
  return {
    reviewThreshold: 99_999_999_999_999n + 1n,
    riskNewPayeeAmount: 0n,
    riskNewAccountAmount: 0n,
    riskNewAccountHours: 24,
    riskVelocityCount: 0,
    riskVelocityMinutes: 60,
    ...overrides,
  };
}

/** What a rule may look at: the transfer itself. */
interface TransferFacts {
  amount: bigint;
  senderOpenedAt: Date;
  now: Date;
}

/** What a rule may look at: the sender's history, read under the sender's lock. */
interface SenderHistory {
  paidReceiverBefore: boolean;
  recentTransfers: number;
}

/** An old account sending a small amount. */
function facts(overrides: Partial<TransferFacts> = {}): TransferFacts {
  return { amount: 100n, senderOpenedAt: new Date(NOW.getTime() - 365 * 24 * HOUR), now: NOW, ...overrides };
}

/** A sender that has paid this receiver before and sent nothing recently. */
function history(overrides: Partial<SenderHistory> = {}): SenderHistory {
  return { paidReceiverBefore: true, recentTransfers: 0, ...overrides };
}

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 1 });
});
afterAll(async () => {
  await database?.drop();
});

async function reviewReasons(transfer: TransferFacts, sender: SenderHistory, settings: RiskSettings): Promise<string[]> {
  const { rows } = await sql<{ reasons: string[] }>`SELECT transfer_review_reasons(${transfer.amount.toString()}::bigint,
    ${transfer.senderOpenedAt}::timestamptz, ${transfer.now}::timestamptz, ${sender.paidReceiverBefore}, ${sender.recentTransfers}::bigint,
    ${settings.reviewThreshold.toString()}::bigint, ${settings.riskNewPayeeAmount.toString()}::bigint,
    ${settings.riskNewAccountAmount.toString()}::bigint, ${settings.riskNewAccountHours}::integer, ${settings.riskVelocityCount}::integer,
    ${settings.riskVelocityMinutes}::integer) AS reasons`.execute(database.handle.db);
  return rows[0]!.reasons;
}

describe('amount_threshold (REVIEW_THRESHOLD)', () => {
  it('flags an amount exactly at the threshold, and above it', async () => {
    expect(await reviewReasons(facts({ amount: 1_000_000n }), history(), DEFAULTS)).toEqual(['amount_threshold']);
    expect(await reviewReasons(facts({ amount: 1_000_001n }), history(), DEFAULTS)).toEqual(['amount_threshold']);
  });

  it('lets one cent below the threshold through', async () => {
    expect(await reviewReasons(facts({ amount: 999_999n }), history(), DEFAULTS)).toEqual([]);
  });

  it('looks only at the amount, not at the history', async () => {
    const worst = history({ paidReceiverBefore: false, recentTransfers: 1000 });
    expect(await reviewReasons(facts({ amount: 999_999n, senderOpenedAt: NOW }), worst, only({ reviewThreshold: 1_000_000n }))).toEqual([]);
  });

  it('has no off switch: the configuration refuses REVIEW_THRESHOLD=0', () => {
    expect(() => loadConfig({ JWT_SECRET: SECRET, REVIEW_THRESHOLD: '0' })).toThrow(/REVIEW_THRESHOLD/);
  });
});

describe('new_payee (RISK_NEW_PAYEE_AMOUNT)', () => {
  const settings = only({ riskNewPayeeAmount: 500_000n });

  it('flags a first payment exactly at the amount', async () => {
    expect(await reviewReasons(facts({ amount: 500_000n }), history({ paidReceiverBefore: false }), settings)).toEqual(['new_payee']);
  });

  it('lets one cent below the amount through', async () => {
    expect(await reviewReasons(facts({ amount: 499_999n }), history({ paidReceiverBefore: false }), settings)).toEqual([]);
  });

  it('lets any amount through to a payee already paid', async () => {
    expect(await reviewReasons(facts({ amount: 99_999_999_999_999n }), history({ paidReceiverBefore: true }), settings)).toEqual([]);
  });

  it('is off at 0, whatever the amount', async () => {
    expect(await reviewReasons(facts({ amount: 99_999_999_999_999n }), history({ paidReceiverBefore: false }), only({}))).toEqual([]);
    expect(await reviewReasons(facts({ amount: 1n }), history({ paidReceiverBefore: false }), only({ riskNewPayeeAmount: 0n }))).toEqual(
      [],
    );
  });
});

describe('new_account (RISK_NEW_ACCOUNT_AMOUNT, RISK_NEW_ACCOUNT_HOURS)', () => {
  const settings = only({ riskNewAccountAmount: 200_000n, riskNewAccountHours: 24 });
  const openedAgo = (ms: number) => new Date(NOW.getTime() - ms);

  it('flags an amount exactly at the threshold from an account opened just now', async () => {
    expect(await reviewReasons(facts({ amount: 200_000n, senderOpenedAt: NOW }), history(), settings)).toEqual(['new_account']);
  });

  it('lets one cent below the threshold through', async () => {
    expect(await reviewReasons(facts({ amount: 199_999n, senderOpenedAt: NOW }), history(), settings)).toEqual([]);
  });

  it('flags up to the last millisecond of the window, and not at or after its end', async () => {
    expect(await reviewReasons(facts({ amount: 200_000n, senderOpenedAt: openedAgo(24 * HOUR - 1) }), history(), settings)).toEqual([
      'new_account',
    ]);
    expect(await reviewReasons(facts({ amount: 200_000n, senderOpenedAt: openedAgo(24 * HOUR) }), history(), settings)).toEqual([]);
    expect(await reviewReasons(facts({ amount: 200_000n, senderOpenedAt: openedAgo(25 * HOUR) }), history(), settings)).toEqual([]);
  });

  it('uses RISK_NEW_ACCOUNT_HOURS for the window', async () => {
    const oneHour = only({ riskNewAccountAmount: 200_000n, riskNewAccountHours: 1 });
    expect(await reviewReasons(facts({ amount: 200_000n, senderOpenedAt: openedAgo(59 * 60_000) }), history(), oneHour)).toEqual([
      'new_account',
    ]);
    expect(await reviewReasons(facts({ amount: 200_000n, senderOpenedAt: openedAgo(61 * 60_000) }), history(), oneHour)).toEqual([]);
  });

  it('is off when the amount is 0 or the hours are 0', async () => {
    const young = facts({ amount: 99_999_999_999_999n, senderOpenedAt: NOW });
    expect(await reviewReasons(young, history(), only({ riskNewAccountAmount: 0n, riskNewAccountHours: 24 }))).toEqual([]);
    expect(await reviewReasons(young, history(), only({ riskNewAccountAmount: 1n, riskNewAccountHours: 0 }))).toEqual([]);
  });
});

describe('velocity (RISK_VELOCITY_COUNT, RISK_VELOCITY_MINUTES)', () => {
  const settings = only({ riskVelocityCount: 20, riskVelocityMinutes: 60 });

  it('flags a sender that already sent exactly the count within the window', async () => {
    expect(await reviewReasons(facts(), history({ recentTransfers: 20 }), settings)).toEqual(['velocity']);
    expect(await reviewReasons(facts(), history({ recentTransfers: 21 }), settings)).toEqual(['velocity']);
  });

  it('lets one transfer fewer through', async () => {
    expect(await reviewReasons(facts(), history({ recentTransfers: 19 }), settings)).toEqual([]);
  });

  it('ignores the amount', async () => {
    expect(await reviewReasons(facts({ amount: 1n }), history({ recentTransfers: 20 }), settings)).toEqual(['velocity']);
  });

  it('is off when the count is 0 or the minutes are 0', async () => {
    expect(
      await reviewReasons(facts(), history({ recentTransfers: 1_000_000 }), only({ riskVelocityCount: 0, riskVelocityMinutes: 60 })),
    ).toEqual([]);
    expect(
      await reviewReasons(facts(), history({ recentTransfers: 1_000_000 }), only({ riskVelocityCount: 20, riskVelocityMinutes: 0 })),
    ).toEqual([]);
  });
});

describe(`transfer_review_reasons, all rules together (${engine})`, () => {
  const allRules = DEFAULTS;
  const young = NOW;

  it('reports the reasons in the order of the rules: amount_threshold, new_payee, new_account, velocity', async () => {
    const reasons = await reviewReasons(
      facts({ amount: 1_000_000n, senderOpenedAt: young }),
      history({ paidReceiverBefore: false, recentTransfers: 20 }),
      allRules,
    );
    expect(reasons).toEqual(['amount_threshold', 'new_payee', 'new_account', 'velocity']);
  });

  it('keeps that order for any subset of reasons', async () => {
    // new_payee and velocity, not the threshold nor a new account.
    expect(await reviewReasons(facts({ amount: 500_000n }), history({ paidReceiverBefore: false, recentTransfers: 20 }), allRules)).toEqual(
      ['new_payee', 'velocity'],
    );
    // amount_threshold and new_account only.
    expect(await reviewReasons(facts({ amount: 1_000_000n, senderOpenedAt: young }), history(), allRules)).toEqual([
      'amount_threshold',
      'new_account',
    ]);
    // new_account and velocity.
    expect(await reviewReasons(facts({ amount: 200_000n, senderOpenedAt: young }), history({ recentTransfers: 25 }), allRules)).toEqual([
      'new_account',
      'velocity',
    ]);
  });

  it('is empty when every rule passes, one cent below each threshold', async () => {
    expect(
      await reviewReasons(
        facts({ amount: 199_999n, senderOpenedAt: young }),
        history({ paidReceiverBefore: false, recentTransfers: 19 }),
        allRules,
      ),
    ).toEqual([]);
    expect(await reviewReasons(facts({ amount: 999_999n }), history({ paidReceiverBefore: true, recentTransfers: 19 }), allRules)).toEqual(
      [],
    );
  });

  it('drops the reasons whose rules are turned off by 0 in the configuration', async () => {
    const config = loadConfig({
      JWT_SECRET: SECRET,
      RISK_NEW_PAYEE_AMOUNT: '0',
      RISK_NEW_ACCOUNT_AMOUNT: '0.00',
      RISK_VELOCITY_COUNT: '0',
    });
    expect(config).toMatchObject({ riskNewPayeeAmount: 0n, riskNewAccountAmount: 0n, riskVelocityCount: 0 });
    const worst = history({ paidReceiverBefore: false, recentTransfers: 1_000_000 });
    expect(await reviewReasons(facts({ amount: 999_999n, senderOpenedAt: young }), worst, config)).toEqual([]);
    expect(await reviewReasons(facts({ amount: 1_000_000n, senderOpenedAt: young }), worst, config)).toEqual(['amount_threshold']);
  });

  it('applies the documented defaults when nothing is configured', async () => {
    const config = loadConfig({ JWT_SECRET: SECRET });
    const known = history({ paidReceiverBefore: true, recentTransfers: 0 });
    // RISK_NEW_ACCOUNT_AMOUNT 2000.00 within 24 h.
    expect(await reviewReasons(facts({ amount: 200_000n, senderOpenedAt: young }), known, config)).toEqual(['new_account']);
    expect(await reviewReasons(facts({ amount: 199_999n, senderOpenedAt: young }), known, config)).toEqual([]);
    // RISK_NEW_PAYEE_AMOUNT 5000.00.
    expect(await reviewReasons(facts({ amount: 500_000n }), history({ paidReceiverBefore: false }), config)).toEqual(['new_payee']);
    expect(await reviewReasons(facts({ amount: 499_999n }), history({ paidReceiverBefore: false }), config)).toEqual([]);
    // REVIEW_THRESHOLD 10000.00.
    expect(await reviewReasons(facts({ amount: 1_000_000n }), known, config)).toEqual(['amount_threshold']);
    expect(await reviewReasons(facts({ amount: 999_999n }), known, config)).toEqual([]);
    // RISK_VELOCITY 20 in 60 minutes.
    expect(await reviewReasons(facts(), history({ recentTransfers: 20 }), config)).toEqual(['velocity']);
    expect(await reviewReasons(facts(), history({ recentTransfers: 19 }), config)).toEqual([]);
  });

  it('is a pure function of its arguments: declared IMMUTABLE, so the same facts always give the same answer', async () => {
    const { rows } = await sql<{
      volatility: string;
    }>`SELECT provolatile AS volatility FROM pg_proc WHERE proname = 'transfer_review_reasons'`.execute(database.handle.db);
    expect(rows).toEqual([{ volatility: 'i' }]);
    const f = facts({ amount: 1_000_000n, senderOpenedAt: young });
    const h = history({ paidReceiverBefore: false, recentTransfers: 20 });
    expect(await reviewReasons(f, h, allRules)).toEqual(await reviewReasons(f, h, allRules));
  });
});
