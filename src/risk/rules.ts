import type { Config } from '../config.js';

/**
 * The risk rules of API.md's configuration table hold a transfer for review: amount_threshold,
 * new_payee, new_account and velocity, reported in that order. They are evaluated in the database, by
 * `transfer_review_reasons` (src/risk/sql/transfer_review_reasons.sql), inside the statement that checks and posts a batch of
 * transfers, on the sender's history read under the sender's lock; a new rule is one more element of
 * that function. This module is what the service passes them.
 */
export type RiskSettings = Pick<
  Config,
  'reviewThreshold' | 'riskNewPayeeAmount' | 'riskNewAccountAmount' | 'riskNewAccountHours' | 'riskVelocityCount' | 'riskVelocityMinutes'
>;

/** The settings as transfer_batch takes them, after the requests: amounts as bigint text. */
export function riskArguments(settings: RiskSettings): [string, string, string, number, number, number] {
  return [
    settings.reviewThreshold.toString(),
    settings.riskNewPayeeAmount.toString(),
    settings.riskNewAccountAmount.toString(),
    settings.riskNewAccountHours,
    settings.riskVelocityCount,
    settings.riskVelocityMinutes,
  ];
}
