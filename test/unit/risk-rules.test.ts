import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { amountThreshold } from '../../src/risk/amount-threshold.js';
import { newAccount } from '../../src/risk/new-account.js';
import { newPayee } from '../../src/risk/new-payee.js';
import { reviewReasons, RULES, type RiskSettings, type SenderHistory, type TransferFacts } from '../../src/risk/rules.js';
import { velocity } from '../../src/risk/velocity.js';

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

/** Settings with every rule but the named ones out of the way (the threshold cannot be 0: set it out of reach). */
function only(overrides: Partial<RiskSettings>): RiskSettings {
  return {
    reviewThreshold: 99_999_999_999_999n,
    riskNewPayeeAmount: 0n,
    riskNewAccountAmount: 0n,
    riskNewAccountHours: 24,
    riskVelocityCount: 0,
    riskVelocityMinutes: 60,
    ...overrides,
  };
}

/** An old account sending a small amount. */
function facts(overrides: Partial<TransferFacts> = {}): TransferFacts {
  return { amount: 100n, senderOpenedAt: new Date(NOW.getTime() - 365 * 24 * HOUR), now: NOW, ...overrides };
}

/** A sender that has paid this receiver before and sent nothing recently. */
function history(overrides: Partial<SenderHistory> = {}): SenderHistory {
  return { sentToday: 0n, paidReceiverBefore: true, recentTransfers: 0, ...overrides };
}

describe('amount_threshold (REVIEW_THRESHOLD)', () => {
  it('flags an amount exactly at the threshold, and above it', () => {
    expect(amountThreshold(facts({ amount: 1_000_000n }), history(), DEFAULTS)).toBe('amount_threshold');
    expect(amountThreshold(facts({ amount: 1_000_001n }), history(), DEFAULTS)).toBe('amount_threshold');
  });

  it('lets one cent below the threshold through', () => {
    expect(amountThreshold(facts({ amount: 999_999n }), history(), DEFAULTS)).toBeNull();
  });

  it('looks only at the amount, not at the history', () => {
    const worst = history({ paidReceiverBefore: false, recentTransfers: 1000, sentToday: 10n ** 12n });
    expect(amountThreshold(facts({ amount: 999_999n, senderOpenedAt: NOW }), worst, DEFAULTS)).toBeNull();
  });

  it('has no off switch: the configuration refuses REVIEW_THRESHOLD=0', () => {
    expect(() => loadConfig({ JWT_SECRET: SECRET, REVIEW_THRESHOLD: '0' })).toThrow(/REVIEW_THRESHOLD/);
  });
});

describe('new_payee (RISK_NEW_PAYEE_AMOUNT)', () => {
  const settings = only({ riskNewPayeeAmount: 500_000n });

  it('flags a first payment exactly at the amount', () => {
    expect(newPayee(facts({ amount: 500_000n }), history({ paidReceiverBefore: false }), settings)).toBe('new_payee');
  });

  it('lets one cent below the amount through', () => {
    expect(newPayee(facts({ amount: 499_999n }), history({ paidReceiverBefore: false }), settings)).toBeNull();
  });

  it('lets any amount through to a payee already paid', () => {
    expect(newPayee(facts({ amount: 99_999_999_999_999n }), history({ paidReceiverBefore: true }), settings)).toBeNull();
  });

  it('is off at 0, whatever the amount', () => {
    expect(newPayee(facts({ amount: 99_999_999_999_999n }), history({ paidReceiverBefore: false }), only({}))).toBeNull();
    expect(newPayee(facts({ amount: 1n }), history({ paidReceiverBefore: false }), only({ riskNewPayeeAmount: 0n }))).toBeNull();
  });
});

describe('new_account (RISK_NEW_ACCOUNT_AMOUNT, RISK_NEW_ACCOUNT_HOURS)', () => {
  const settings = only({ riskNewAccountAmount: 200_000n, riskNewAccountHours: 24 });
  const openedAgo = (ms: number) => new Date(NOW.getTime() - ms);

  it('flags an amount exactly at the threshold from an account opened just now', () => {
    expect(newAccount(facts({ amount: 200_000n, senderOpenedAt: NOW }), history(), settings)).toBe('new_account');
  });

  it('lets one cent below the threshold through', () => {
    expect(newAccount(facts({ amount: 199_999n, senderOpenedAt: NOW }), history(), settings)).toBeNull();
  });

  it('flags up to the last millisecond of the window, and not at or after its end', () => {
    expect(newAccount(facts({ amount: 200_000n, senderOpenedAt: openedAgo(24 * HOUR - 1) }), history(), settings)).toBe('new_account');
    expect(newAccount(facts({ amount: 200_000n, senderOpenedAt: openedAgo(24 * HOUR) }), history(), settings)).toBeNull();
    expect(newAccount(facts({ amount: 200_000n, senderOpenedAt: openedAgo(25 * HOUR) }), history(), settings)).toBeNull();
  });

  it('uses RISK_NEW_ACCOUNT_HOURS for the window', () => {
    const oneHour = only({ riskNewAccountAmount: 200_000n, riskNewAccountHours: 1 });
    expect(newAccount(facts({ amount: 200_000n, senderOpenedAt: openedAgo(59 * 60_000) }), history(), oneHour)).toBe('new_account');
    expect(newAccount(facts({ amount: 200_000n, senderOpenedAt: openedAgo(61 * 60_000) }), history(), oneHour)).toBeNull();
  });

  it('is off when the amount is 0 or the hours are 0', () => {
    const young = facts({ amount: 99_999_999_999_999n, senderOpenedAt: NOW });
    expect(newAccount(young, history(), only({ riskNewAccountAmount: 0n, riskNewAccountHours: 24 }))).toBeNull();
    expect(newAccount(young, history(), only({ riskNewAccountAmount: 1n, riskNewAccountHours: 0 }))).toBeNull();
  });
});

describe('velocity (RISK_VELOCITY_COUNT, RISK_VELOCITY_MINUTES)', () => {
  const settings = only({ riskVelocityCount: 20, riskVelocityMinutes: 60 });

  it('flags a sender that already sent exactly the count within the window', () => {
    expect(velocity(facts(), history({ recentTransfers: 20 }), settings)).toBe('velocity');
    expect(velocity(facts(), history({ recentTransfers: 21 }), settings)).toBe('velocity');
  });

  it('lets one transfer fewer through', () => {
    expect(velocity(facts(), history({ recentTransfers: 19 }), settings)).toBeNull();
  });

  it('ignores the amount', () => {
    expect(velocity(facts({ amount: 1n }), history({ recentTransfers: 20 }), settings)).toBe('velocity');
  });

  it('is off when the count is 0 or the minutes are 0', () => {
    expect(velocity(facts(), history({ recentTransfers: 1_000_000 }), only({ riskVelocityCount: 0, riskVelocityMinutes: 60 }))).toBeNull();
    expect(velocity(facts(), history({ recentTransfers: 1_000_000 }), only({ riskVelocityCount: 20, riskVelocityMinutes: 0 }))).toBeNull();
  });
});

describe('reviewReasons', () => {
  const allRules = DEFAULTS;
  const young = NOW;

  it('applies the rules in the order of RULES: amount_threshold, new_payee, new_account, velocity', () => {
    expect(RULES).toEqual([amountThreshold, newPayee, newAccount, velocity]);
    const reasons = reviewReasons(
      facts({ amount: 1_000_000n, senderOpenedAt: young }),
      history({ paidReceiverBefore: false, recentTransfers: 20 }),
      allRules,
    );
    expect(reasons).toEqual(['amount_threshold', 'new_payee', 'new_account', 'velocity']);
  });

  it('keeps that order for any subset of reasons', () => {
    // new_payee and velocity, not the threshold nor a new account.
    expect(reviewReasons(facts({ amount: 500_000n }), history({ paidReceiverBefore: false, recentTransfers: 20 }), allRules)).toEqual([
      'new_payee',
      'velocity',
    ]);
    // amount_threshold and new_account only.
    expect(reviewReasons(facts({ amount: 1_000_000n, senderOpenedAt: young }), history(), allRules)).toEqual(['amount_threshold', 'new_account']);
    // new_account and velocity.
    expect(reviewReasons(facts({ amount: 200_000n, senderOpenedAt: young }), history({ recentTransfers: 25 }), allRules)).toEqual([
      'new_account',
      'velocity',
    ]);
  });

  it('is empty when every rule passes, one cent below each threshold', () => {
    expect(
      reviewReasons(facts({ amount: 199_999n, senderOpenedAt: young }), history({ paidReceiverBefore: false, recentTransfers: 19 }), allRules),
    ).toEqual([]);
    expect(reviewReasons(facts({ amount: 999_999n }), history({ paidReceiverBefore: true, recentTransfers: 19 }), allRules)).toEqual([]);
  });

  it('drops the reasons whose rules are turned off by 0 in the configuration', () => {
    const config = loadConfig({
      JWT_SECRET: SECRET,
      RISK_NEW_PAYEE_AMOUNT: '0',
      RISK_NEW_ACCOUNT_AMOUNT: '0.00',
      RISK_VELOCITY_COUNT: '0',
    });
    expect(config).toMatchObject({ riskNewPayeeAmount: 0n, riskNewAccountAmount: 0n, riskVelocityCount: 0 });
    const worst = history({ paidReceiverBefore: false, recentTransfers: 1_000_000 });
    expect(reviewReasons(facts({ amount: 999_999n, senderOpenedAt: young }), worst, config)).toEqual([]);
    expect(reviewReasons(facts({ amount: 1_000_000n, senderOpenedAt: young }), worst, config)).toEqual(['amount_threshold']);
  });

  it('applies the documented defaults when nothing is configured', () => {
    const config = loadConfig({ JWT_SECRET: SECRET });
    const known = history({ paidReceiverBefore: true, recentTransfers: 0 });
    // RISK_NEW_ACCOUNT_AMOUNT 2000.00 within 24 h.
    expect(reviewReasons(facts({ amount: 200_000n, senderOpenedAt: young }), known, config)).toEqual(['new_account']);
    expect(reviewReasons(facts({ amount: 199_999n, senderOpenedAt: young }), known, config)).toEqual([]);
    // RISK_NEW_PAYEE_AMOUNT 5000.00.
    expect(reviewReasons(facts({ amount: 500_000n }), history({ paidReceiverBefore: false }), config)).toEqual(['new_payee']);
    expect(reviewReasons(facts({ amount: 499_999n }), history({ paidReceiverBefore: false }), config)).toEqual([]);
    // REVIEW_THRESHOLD 10000.00.
    expect(reviewReasons(facts({ amount: 1_000_000n }), known, config)).toEqual(['amount_threshold']);
    expect(reviewReasons(facts({ amount: 999_999n }), known, config)).toEqual([]);
    // RISK_VELOCITY 20 in 60 minutes.
    expect(reviewReasons(facts(), history({ recentTransfers: 20 }), config)).toEqual(['velocity']);
    expect(reviewReasons(facts(), history({ recentTransfers: 19 }), config)).toEqual([]);
  });

  it('is pure: the same facts give the same answer and nothing is mutated', () => {
    const f = facts({ amount: 1_000_000n, senderOpenedAt: young });
    const h = history({ paidReceiverBefore: false, recentTransfers: 20 });
    const s = { ...allRules };
    const copies = [structuredClone(f), structuredClone(h), structuredClone(s)];
    expect(reviewReasons(f, h, s)).toEqual(reviewReasons(f, h, s));
    expect([f, h, s]).toEqual(copies);
  });
});
