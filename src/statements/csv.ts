import { formatAmount } from '../money.js';
import type { StatementEntryRow } from './service.js';

const CSV_COLUMNS = ['transaction_id', 'posted_at', 'type', 'description', 'counterparty', 'amount', 'balance_after'] as const;

// RFC 4180 §2: records end with CRLF.
const RECORD_END = '\r\n';

/** RFC 4180 §2.6-2.7: a field holding a comma, a double quote, CR or LF is enclosed in quotes, its quotes doubled. */
function quoteField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/**
 * CSV injection (OWASP): a spreadsheet runs a cell that starts with = + - @ (or TAB or CR, which some
 * programs skip before looking) as a formula, so a payer could plant =HYPERLINK(...) in a description.
 * A leading single quote makes such a cell text. Only for free text: the amounts this file writes
 * itself start with '-' because they are negative, and must stay numbers.
 */
function neutralizeFormula(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

function record(fields: readonly string[]): string {
  return fields.map(quoteField).join(',') + RECORD_END;
}

function entryRecord(entry: StatementEntryRow): string {
  return record([
    entry.transaction_id,
    entry.posted_at.toISOString(),
    entry.type,
    neutralizeFormula(entry.description ?? ''),
    entry.counterparty ?? '',
    formatAmount(entry.amount),
    formatAmount(entry.balance_after),
  ]);
}

/**
 * The statement as CSV: a header row, then one row per entry, one chunk per batch, so that the file
 * is written as the cursor reads it and never held whole.
 */
export async function* renderStatementCsv(batches: AsyncIterable<StatementEntryRow[]>): AsyncGenerator<string> {
  yield record(CSV_COLUMNS);
  for await (const batch of batches) yield batch.map(entryRecord).join('');
}
