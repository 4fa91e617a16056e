import { describe, expect, it } from 'vitest';
import type { StatementEntryRow, StatementHeader } from '../../src/statements/service.js';
import { countStatementPages, renderStatementPdf } from '../../src/statements/pdf.js';
import { pdfPageCount, pdfPageTexts } from '../helpers/pdf-text.js';

function header(entryCount: number, heldCount: number): StatementHeader {
  return {
    account: { account_number: '4532015112', currency: 'USD', type: 'checking' } as StatementHeader['account'],
    holderName: 'Jane Doe',
    period: { from: '2025-01-01', to: '2025-01-31', start: new Date('2025-01-01T00:00:00Z'), end: new Date('2025-02-01T00:00:00Z') },
    openingBalance: 0n,
    closingBalance: BigInt(entryCount) * 100n,
    totalCredits: BigInt(entryCount) * 100n,
    totalDebits: 0n,
    entryCount,
    held: Array.from({ length: heldCount }, (_, i) => ({
      id: `held-${i}`,
      created_at: new Date('2025-01-31T10:00:00Z'),
      amount: 50_000n,
      counterparty: '4532015112',
      review_reasons: ['amount_threshold'],
    })),
  };
}

async function* entries(count: number): AsyncGenerator<StatementEntryRow[]> {
  const rows = Array.from({ length: count }, (_, i) => ({
    transaction_id: `t${i}`,
    posted_at: new Date('2025-01-15T10:00:00Z'),
    type: 'deposit' as const,
    description: `Entry ${i + 1}`,
    amount: 100n,
    balance_after: BigInt(i + 1) * 100n,
    counterparty: null,
  }));
  for (let i = 0; i < rows.length; i += 40) yield rows.slice(i, i + 40);
}

async function render(entryCount: number, heldCount: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of renderStatementPdf(header(entryCount, heldCount), entries(entryCount), {
    bankName: 'Test Bank',
    issuedAt: new Date(),
  }))
    chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('statement PDF paging', () => {
  // Every number of rows across the first three page breaks, with and without a held section that
  // may itself have to move to a new page.
  it('numbers each page "Page X of Y" with the page count the dry run predicted, at every page break', async () => {
    for (let entryCount = 0; entryCount <= 140; entryCount++) {
      for (const heldCount of [0, 4]) {
        const pdf = await render(entryCount, heldCount);
        const pages = pdfPageTexts(pdf);
        const predicted = countStatementPages(header(entryCount, heldCount));
        expect(pdfPageCount(pdf), `${entryCount} entries, ${heldCount} held`).toBe(predicted);
        expect(pages.map((text) => /Page (\d+) of (\d+)/.exec(text)?.slice(1))).toEqual(
          pages.map((_, i) => [String(i + 1), String(predicted)]),
        );
      }
    }
  }, 120_000);

  it('shows every entry exactly once, the table header on every page, and the held section after the entries', async () => {
    const pages = pdfPageTexts(await render(120, 2));
    const text = pages.join('\n');
    for (let i = 1; i <= 120; i++) expect(text.split('\n').filter((line) => line === `Deposit: Entry ${i}`)).toHaveLength(1);
    for (const page of pages) expect(page).toMatch(/Date\nDescription\nCounterparty\nAmount\nBalance/);
    expect(text.indexOf('Held for review')).toBeGreaterThan(text.indexOf('Deposit: Entry 120'));
  });
});
