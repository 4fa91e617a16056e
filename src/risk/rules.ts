import type { Config } from '../config.js';

/**
 * The risk rules of README.md's Configuration table hold a transfer for review: amount_threshold,
 * new_payee, new_account and velocity, reported in that order. They are evaluated in the database, by
 * `transfer_review_reasons` (src/risk/sql/transfer_review_reasons.sql), inside the statement that checks and posts a batch of
 * transfers, on the sender's history read under the sender's lock; a new rule is one more element of
 * that function. This module is what the service passes them.
 */
export type RiskSettings = Pick<
  Config,
  'reviewThreshold' | 'riskNewPayeeAmount' | 'riskNewAccountAmount' | 'riskNewAccountHours' | 'riskVelocityCount' | 'riskVelocityMinutes'
>;

/** The settings as transfer_batch takes them (its p_risk): amounts as minor units in decimal text. */
export function riskArgument(settings: RiskSettings): string {
  return JSON.stringify({
    review_threshold: settings.reviewThreshold.toString(),
    new_payee_amount: settings.riskNewPayeeAmount.toString(),
    new_account_amount: settings.riskNewAccountAmount.toString(),
    new_account_hours: settings.riskNewAccountHours,
    velocity_count: settings.riskVelocityCount,
    velocity_minutes: settings.riskVelocityMinutes,
  });
}
