import type { RiskRule } from './rules.js';

/** REVIEW_THRESHOLD: large transfers wait for a person. */
export const amountThreshold: RiskRule = (transfer, _history, settings) =>
  transfer.amount >= settings.reviewThreshold ? 'amount_threshold' : null;
