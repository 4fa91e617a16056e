import PDFDocument from 'pdfkit';
import { formatAmount } from '../money.js';
import type { StatementEntryRow, StatementHeader } from './service.js';

/**
 * The statement as a PDF, written page by page while the cursor reads the entries.
 *
 * "Page X of Y" needs Y on page 1. pdfkit's bufferPages would keep every page in memory until the end
 * to stamp it afterwards: a year of entries is thousands of pages, and nothing would leave before the
 * last row was read. Instead every row has a fixed height (long text is cut to one line), so the page
 * count follows from the number of rows alone. The header, read in the same snapshot as the
 * entries, knows that number, and a dry run of the very layout code that draws the pages (with no
 * document attached) counts them first. Each page is then complete, footer included, when the next
 * one starts, and pdfkit flushes it at once.
 */

export interface PdfContext {
  bankName: string;
  issuedAt: Date;
}

// A4 portrait, in points.
const PAGE_WIDTH = 595.28;
const PAGE_HEIGHT = 841.89;
const MARGIN_X = 40;
const CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X;
const RIGHT_EDGE = PAGE_WIDTH - MARGIN_X;
const FIRST_PAGE_BODY_TOP = 198;
const LATER_PAGE_BODY_TOP = 70;
const BODY_BOTTOM = PAGE_HEIGHT - 50;
const FOOTER_Y = PAGE_HEIGHT - 34;
const SECTION_TITLE_HEIGHT = 32;
const TABLE_HEADER_HEIGHT = 18;
const ROW_HEIGHT = 15;
const CELL_PADDING = 5;

const REGULAR = 'Helvetica';
const BOLD = 'Helvetica-Bold';
const INK = '#1d2733';
const MUTED = '#5b6673';
const ACCENT = '#1f3a5f';
const NEGATIVE = '#9b1c1c';
const HEADER_FILL = '#e3e9f0';
const STRIPE_FILL = '#f5f7fa';
const BOX_FILL = '#f0f3f7';
const RULE = '#c5ced8';

interface Column {
  title: string;
  width: number;
  align: 'left' | 'right';
}

const DATE_WIDTH = 62;
const COUNTERPARTY_WIDTH = 76;
const MONEY_WIDTH = 92;

const ENTRY_COLUMNS: Column[] = [
  { title: 'Date', width: DATE_WIDTH, align: 'left' },
  { title: 'Description', width: CONTENT_WIDTH - DATE_WIDTH - COUNTERPARTY_WIDTH - 2 * MONEY_WIDTH, align: 'left' },
  { title: 'Counterparty', width: COUNTERPARTY_WIDTH, align: 'left' },
  { title: 'Amount', width: MONEY_WIDTH, align: 'right' },
  { title: 'Balance', width: MONEY_WIDTH, align: 'right' },
];

const HELD_COLUMNS: Column[] = [
  { title: 'Created', width: DATE_WIDTH, align: 'left' },
  { title: 'Counterparty', width: COUNTERPARTY_WIDTH, align: 'left' },
  { title: 'Review reasons', width: CONTENT_WIDTH - DATE_WIDTH - COUNTERPARTY_WIDTH - MONEY_WIDTH, align: 'left' },
  { title: 'Amount', width: MONEY_WIDTH, align: 'right' },
];

const TYPE_LABELS: Record<StatementEntryRow['type'], string> = {
  transfer: 'Transfer',
  deposit: 'Deposit',
  withdrawal: 'Withdrawal',
  loan_disbursement: 'Loan disbursement',
  loan_repayment: 'Loan repayment',
  reversal: 'Reversal',
};

// The standard PDF fonts cover Windows-1252 only: outside it pdfkit draws nothing at all, which could
// silently change a name, so such characters become a visible '?'. Line breaks would break a fixed row.
const OUTSIDE_WIN_ANSI = /[^\x20-\x7e\xa0-\xff€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]/gu;

function toWinAnsi(text: string): string {
  return text
    .normalize('NFC')
    .replace(/[\r\n\t]+/g, ' ')
    .replace(OUTSIDE_WIN_ANSI, '?');
}

/** "-1234567.89" -> "-1,234,567.89": grouping for the reader, on the exact decimal text. */
function groupDigits(amount: string): string {
  return amount.replace(/\B(?=(\d{3})+\.)/g, ',');
}

const money = (units: bigint): string => groupDigits(formatAmount(units));
const day = (instant: Date): string => instant.toISOString().slice(0, 10);

/**
 * Places the statement on pages and, when it has a document, draws it. Without one it only counts the
 * pages: the same calls in the same order, so the count cannot disagree with the drawing.
 */
class StatementLayout {
  pageNumber = 0;
  #y = 0;
  #columns: Column[] | null = null;
  #rowIndex = 0;

  constructor(
    private readonly header: StatementHeader,
    private readonly context: PdfContext,
    private readonly totalPages: number,
    private readonly doc: PDFKit.PDFDocument | null,
  ) {}

  /** The whole statement around the entries, which `entryRow` places one by one in between. */
  begin(): void {
    this.#newPage();
    this.#startTable('Transactions', ENTRY_COLUMNS);
  }

  /** One entry's row; without an entry (the dry run) only its place. */
  entryRow(entry?: StatementEntryRow): void {
    this.#row(entry && ((doc) => entryCells(doc, entry)));
  }

  end(): void {
    if (this.header.entryCount === 0) this.#line('No transactions in this period.', MUTED);
    if (this.header.held.length > 0) {
      this.#startTable('Held for review: not yet moved, not included in the balances above', HELD_COLUMNS);
      for (const held of this.header.held) {
        this.#row((doc) =>
          [
            { text: day(held.created_at) },
            { text: held.counterparty ?? 'Bank' },
            { text: held.review_reasons.map((reason) => reason.replace(/_/g, ' ')).join(', ') },
            { text: money(-held.amount), color: NEGATIVE },
          ].map((cell, i) => ({ ...cell, text: fit(doc, toWinAnsi(cell.text), HELD_COLUMNS[i]!.width - 2 * CELL_PADDING) })),
        );
      }
    }
    this.#paint((doc) => this.#drawFooter(doc));
  }

  #paint(draw: (doc: PDFKit.PDFDocument) => void): void {
    if (this.doc) draw(this.doc);
  }

  #newPage(): void {
    if (this.pageNumber > 0) this.#paint((doc) => this.#drawFooter(doc));
    this.pageNumber += 1;
    this.#paint((doc) => {
      doc.addPage();
      if (this.pageNumber === 1) this.#drawFirstPageHeader(doc);
      else this.#drawRunningHeader(doc);
    });
    this.#y = this.pageNumber === 1 ? FIRST_PAGE_BODY_TOP : LATER_PAGE_BODY_TOP;
    // A table that goes on repeats its header row at the top of the new page.
    if (this.#columns) this.#tableHeader();
  }

  /** A titled table; title, header row and first row stay together on one page. */
  #startTable(title: string, columns: Column[]): void {
    this.#columns = null;
    if (this.#y + SECTION_TITLE_HEIGHT + TABLE_HEADER_HEIGHT + ROW_HEIGHT > BODY_BOTTOM) this.#newPage();
    const top = this.#y + 14;
    this.#paint((doc) => doc.font(BOLD).fontSize(11).fillColor(ACCENT).text(toWinAnsi(title), MARGIN_X, top, { lineBreak: false }));
    this.#y += SECTION_TITLE_HEIGHT;
    this.#columns = columns;
    this.#rowIndex = 0;
    this.#tableHeader();
  }

  #tableHeader(): void {
    const columns = this.#columns!;
    const top = this.#y;
    this.#paint((doc) => {
      doc.rect(MARGIN_X, top, CONTENT_WIDTH, TABLE_HEADER_HEIGHT).fill(HEADER_FILL);
      doc.font(BOLD).fontSize(8.5).fillColor(INK);
      drawCells(
        doc,
        columns,
        top + 5,
        columns.map((column) => ({ text: column.title })),
      );
    });
    this.#y += TABLE_HEADER_HEIGHT;
  }

  #row(cells?: (doc: PDFKit.PDFDocument) => Cell[]): void {
    if (this.#y + ROW_HEIGHT > BODY_BOTTOM) this.#newPage();
    const top = this.#y;
    const striped = this.#rowIndex % 2 === 1;
    const columns = this.#columns!;
    this.#paint((doc) => {
      if (striped) doc.rect(MARGIN_X, top, CONTENT_WIDTH, ROW_HEIGHT).fill(STRIPE_FILL);
      doc.font(REGULAR).fontSize(8.5);
      if (cells) drawCells(doc, columns, top + 4, cells(doc));
    });
    this.#rowIndex += 1;
    this.#y += ROW_HEIGHT;
  }

  /** One line of text outside any table. */
  #line(text: string, color: string): void {
    this.#columns = null;
    if (this.#y + ROW_HEIGHT > BODY_BOTTOM) this.#newPage();
    const top = this.#y + 4;
    this.#paint((doc) =>
      doc
        .font(REGULAR)
        .fontSize(9)
        .fillColor(color)
        .text(text, MARGIN_X + CELL_PADDING, top, { lineBreak: false }),
    );
    this.#y += ROW_HEIGHT;
  }

  #drawFirstPageHeader(doc: PDFKit.PDFDocument): void {
    const { header, context } = this;
    const period = `${header.period.from} to ${header.period.to}`;
    doc
      .font(BOLD)
      .fontSize(20)
      .fillColor(ACCENT)
      .text(fit(doc, toWinAnsi(context.bankName), CONTENT_WIDTH - 200), MARGIN_X, 40, { lineBreak: false });
    doc.font(REGULAR).fontSize(12).fillColor(MUTED).text('Account statement', MARGIN_X, 67, { lineBreak: false });
    doc.font(REGULAR).fontSize(8).fillColor(MUTED);
    drawRight(doc, 'Period (UTC)', 42);
    doc.font(BOLD).fontSize(11).fillColor(INK);
    drawRight(doc, period, 53);
    doc.font(REGULAR).fontSize(8).fillColor(MUTED);
    drawRight(doc, `Issued ${context.issuedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`, 70);
    rule(doc, 90);

    const facts: Array<[string, string, number]> = [
      ['Account holder', toWinAnsi(header.holderName), 215],
      ['Account number', header.account.account_number!, 110],
      ['Account type', header.account.type === 'savings' ? 'Savings' : 'Checking', 95],
      ['Currency', header.account.currency, CONTENT_WIDTH - 215 - 110 - 95],
    ];
    let x = MARGIN_X;
    for (const [label, value, width] of facts) {
      doc.font(REGULAR).fontSize(8).fillColor(MUTED).text(label, x, 102, { lineBreak: false });
      doc
        .font(BOLD)
        .fontSize(11)
        .fillColor(INK)
        .text(fit(doc, value, width - 10), x, 114, { lineBreak: false });
      x += width;
    }

    const boxes: Array<[string, bigint]> = [
      ['Opening balance', header.openingBalance],
      ['Money in', header.totalCredits],
      ['Money out', -header.totalDebits],
      ['Closing balance', header.closingBalance],
    ];
    const gap = 8;
    const boxWidth = (CONTENT_WIDTH - gap * (boxes.length - 1)) / boxes.length;
    boxes.forEach(([label, amount], i) => {
      const left = MARGIN_X + i * (boxWidth + gap);
      doc.rect(left, 142, boxWidth, 46).fill(BOX_FILL);
      doc
        .font(REGULAR)
        .fontSize(8)
        .fillColor(MUTED)
        .text(`${label} (${header.account.currency})`, left + 9, 150, { lineBreak: false });
      doc
        .font(BOLD)
        .fontSize(13)
        .fillColor(amount < 0n ? NEGATIVE : INK)
        .text(money(amount), left + 9, 165, { lineBreak: false });
    });
  }

  #drawRunningHeader(doc: PDFKit.PDFDocument): void {
    const { header, context } = this;
    doc
      .font(BOLD)
      .fontSize(10)
      .fillColor(ACCENT)
      .text(fit(doc, toWinAnsi(context.bankName), 220), MARGIN_X, 36, { lineBreak: false });
    doc.font(REGULAR).fontSize(8.5).fillColor(MUTED);
    drawRight(doc, `Statement of account ${header.account.account_number} · ${header.period.from} to ${header.period.to}`, 37.5);
    rule(doc, 54);
  }

  #drawFooter(doc: PDFKit.PDFDocument): void {
    rule(doc, FOOTER_Y - 8);
    doc.font(REGULAR).fontSize(7.5).fillColor(MUTED);
    doc.text(
      `Amounts in ${this.header.account.currency}; money leaving the account is negative. Dates and times are UTC.`,
      MARGIN_X,
      FOOTER_Y,
      {
        lineBreak: false,
      },
    );
    drawRight(doc, `Page ${this.pageNumber} of ${this.totalPages}`, FOOTER_Y);
  }
}

interface Cell {
  text: string;
  color?: string;
}

function entryCells(doc: PDFKit.PDFDocument, entry: StatementEntryRow): Cell[] {
  const description = TYPE_LABELS[entry.type] + (entry.description ? `: ${entry.description}` : '');
  return [
    { text: day(entry.posted_at) },
    { text: toWinAnsi(description) },
    { text: entry.counterparty ?? 'Bank' },
    { text: money(entry.amount), color: entry.amount < 0n ? NEGATIVE : INK },
    { text: money(entry.balance_after) },
  ].map((cell, i) => ({ ...cell, text: fit(doc, cell.text, ENTRY_COLUMNS[i]!.width - 2 * CELL_PADDING) }));
}

function drawCells(doc: PDFKit.PDFDocument, columns: Column[], top: number, cells: Cell[]): void {
  let left = MARGIN_X;
  columns.forEach((column, i) => {
    const cell = cells[i]!;
    const x = column.align === 'right' ? left + column.width - CELL_PADDING - doc.widthOfString(cell.text) : left + CELL_PADDING;
    if (cell.color) doc.fillColor(cell.color);
    else doc.fillColor(INK);
    doc.text(cell.text, x, top, { lineBreak: false });
    left += column.width;
  });
}

/** Right-aligned text, placed by hand: pdfkit's own alignment goes through its line wrapper, which may add pages. */
function drawRight(doc: PDFKit.PDFDocument, text: string, top: number): void {
  doc.text(text, RIGHT_EDGE - doc.widthOfString(text), top, { lineBreak: false });
}

function rule(doc: PDFKit.PDFDocument, y: number): void {
  doc.moveTo(MARGIN_X, y).lineTo(RIGHT_EDGE, y).lineWidth(0.5).strokeColor(RULE).stroke();
}

/** The text, or its longest beginning that fits the width followed by an ellipsis, in the current font. */
function fit(doc: PDFKit.PDFDocument, text: string, width: number): string {
  if (doc.widthOfString(text) <= width) return text;
  const characters = Array.from(text);
  let [shortest, longest] = [0, characters.length];
  while (shortest < longest) {
    const middle = Math.ceil((shortest + longest) / 2);
    if (doc.widthOfString(characters.slice(0, middle).join('').trimEnd() + '…') <= width) shortest = middle;
    else longest = middle - 1;
  }
  return characters.slice(0, shortest).join('').trimEnd() + '…';
}

/** The number of pages the statement takes: the layout run without a document. */
export function countStatementPages(header: StatementHeader): number {
  const layout = new StatementLayout(header, { bankName: '', issuedAt: new Date(0) }, 0, null);
  layout.begin();
  for (let i = 0; i < header.entryCount; i++) layout.entryRow();
  layout.end();
  return layout.pageNumber;
}

/** Whatever the document has written so far. */
function* written(doc: PDFKit.PDFDocument): Generator<Buffer> {
  const chunk = doc.read() as Buffer | null;
  if (chunk) yield chunk;
}

/** The statement as PDF bytes, one chunk per batch of entries (pages are flushed as they fill). */
export async function* renderStatementPdf(
  header: StatementHeader,
  batches: AsyncIterable<StatementEntryRow[]>,
  context: PdfContext,
): AsyncGenerator<Buffer> {
  const totalPages = countStatementPages(header);
  const title = `Statement of account ${header.account.account_number}, ${header.period.from} to ${header.period.to}`;
  const doc = new PDFDocument({
    size: 'A4',
    margin: 0,
    autoFirstPage: false,
    info: { Title: title, Author: toWinAnsi(context.bankName), CreationDate: context.issuedAt },
  });
  const layout = new StatementLayout(header, context, totalPages, doc);
  layout.begin();
  yield* written(doc);
  for await (const batch of batches) {
    for (const entry of batch) layout.entryRow(entry);
    yield* written(doc);
  }
  layout.end();
  doc.end();
  yield* written(doc);
}
