import { describe, expect, it } from 'vitest';
import { databaseTrouble } from '../../src/db/transaction.js';

const withCode = (code: string) => Object.assign(new Error('x'), { code });

describe('databaseTrouble', () => {
  it('tells a saturated database from an absent one', () => {
    expect(databaseTrouble(withCode('55P03'))).toBe('busy');
    expect(databaseTrouble(withCode('57014'))).toBe('busy');
    expect(databaseTrouble(new Error('timeout exceeded when trying to connect'))).toBe('busy');
    expect(databaseTrouble(withCode('ECONNREFUSED'))).toBe('unavailable');
    expect(databaseTrouble(withCode('57P01'))).toBe('unavailable');
    expect(databaseTrouble(new Error('Connection terminated unexpectedly'))).toBe('unavailable');
  });

  it('leaves every other failure alone', () => {
    expect(databaseTrouble(withCode('23505'))).toBeUndefined();
    expect(databaseTrouble(new Error('boom'))).toBeUndefined();
    expect(databaseTrouble(null)).toBeUndefined();
  });
});
