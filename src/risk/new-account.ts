import type { RiskRule } from './rules.js';

const HOUR_MS = 3_600_000;

/** RISK_NEW_ACCOUNT_AMOUNT / _HOURS: a large transfer out of a freshly opened account (0 turns it off). */
export const newAccount: RiskRule = (transfer, _history, settings) => {
  if (settings.riskNewAccountAmount === 0n || settings.riskNewAccountHours === 0) return null;
  const ageMs = transfer.now.getTime() - transfer.senderOpenedAt.getTime();
  return transfer.amount >= settings.riskNewAccountAmount && ageMs < settings.riskNewAccountHours * HOUR_MS ? 'new_account' : null;
};
