import type { Config } from '../config.js';
import { amountThreshold } from './amount-threshold.js';
import { newAccount } from './new-account.js';
import { newPayee } from './new-payee.js';
import { velocity } from './velocity.js';

/** What a rule may look at: the transfer itself. */
export interface TransferFacts {
  amount: bigint;
  senderOpenedAt: Date;
  now: Date;
}

/** What a rule may look at: the sender's recent history, read under the sender's row lock. */
export interface SenderHistory {
  /** Transfers of the current UTC day, completed or pending review (they count against the daily limit). */
  sentToday: bigint;
  /** Whether the sender ever completed a transfer to this receiver. */
  paidReceiverBefore: boolean;
  /** Transfers sent (completed or pending) within the velocity window. */
  recentTransfers: number;
}

export type RiskSettings = Pick<
  Config,
  'reviewThreshold' | 'riskNewPayeeAmount' | 'riskNewAccountAmount' | 'riskNewAccountHours' | 'riskVelocityCount' | 'riskVelocityMinutes'
>;

/** A rule returns its reason code when the transfer must wait for review, else null. Pure: no I/O. */
export type RiskRule = (transfer: TransferFacts, history: SenderHistory, settings: RiskSettings) => string | null;

/** Every rule the bank applies; a new rule is one file and one line here. */
export const RULES: readonly RiskRule[] = [amountThreshold, newPayee, newAccount, velocity];

/** The reasons a transfer must wait for review; empty when it may complete at once. */
export function reviewReasons(transfer: TransferFacts, history: SenderHistory, settings: RiskSettings): string[] {
  return RULES.map((rule) => rule(transfer, history, settings)).filter((reason): reason is string => reason !== null);
}
