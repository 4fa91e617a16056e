import type { RiskRule } from './rules.js';

/** RISK_NEW_PAYEE_AMOUNT: a large first payment to an account the sender never paid (0 turns it off). */
export const newPayee: RiskRule = (transfer, history, settings) =>
  settings.riskNewPayeeAmount > 0n && transfer.amount >= settings.riskNewPayeeAmount && !history.paidReceiverBefore ? 'new_payee' : null;
