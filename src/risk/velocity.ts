import type { RiskRule } from './rules.js';

/** RISK_VELOCITY_COUNT / _MINUTES: an account that already sent this many transfers in the window (0 turns it off). */
export const velocity: RiskRule = (_transfer, history, settings) =>
  settings.riskVelocityCount > 0 && settings.riskVelocityMinutes > 0 && history.recentTransfers >= settings.riskVelocityCount ? 'velocity' : null;
