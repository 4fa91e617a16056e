import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type Customer, type TestApp } from './helpers/app.js';
import { insertBulkHistory } from './helpers/ledger-history.js';

const ENTRIES = 100_000;
const MB = 1024 * 1024;

// A measurement tool only: without a collection before each sample, heapUsed mostly counts garbage that
// the next collection frees, and says little about what a download keeps alive.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

interface Download {
  status: number;
  bytes: number;
  chunks: number;
  lines: number;
  head: string;
  tail: string;
  firstByteMs: number;
  totalMs: number;
  rssGrowthMb: number;
  /** Peak heap growth, garbage included. */
  heapGrowthMb: number;
  /** Peak growth of the heap that survives a full collection: what the download keeps alive. */
  liveHeapGrowthMb: number;
}

/**
 * Downloads over a real HTTP connection, reading the body as it arrives and sampling this process's
 * memory (server and client both live in it) while it does.
 */
async function download(url: string, token: string): Promise<Download> {
  collectGarbage();
  const baseline = process.memoryUsage();
  let [peakRss, peakHeap, peakLiveHeap] = [baseline.rss, baseline.heapUsed, baseline.heapUsed];
  let samples = 0;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakHeap = Math.max(peakHeap, now.heapUsed);
    // Every tenth sample (every 100 ms), a full collection first.
    if (++samples % 10 === 0) {
      collectGarbage();
      peakLiveHeap = Math.max(peakLiveHeap, process.memoryUsage().heapUsed);
    }
  }, 10);
  const started = performance.now();
  try {
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    const reader = response.body!.getReader();
    let [firstByteMs, bytes, chunks, lines, head, tail] = [0, 0, 0, 0, '', ''];
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      const chunk = read.value;
      if (chunks === 0) firstByteMs = performance.now() - started;
      chunks += 1;
      bytes += chunk.length;
      for (const byte of chunk) if (byte === 0x0a) lines += 1;
      if (head.length < 128) head += Buffer.from(chunk.subarray(0, 128)).toString('latin1');
      tail = (tail + Buffer.from(chunk.subarray(-64)).toString('latin1')).slice(-64);
    }
    return {
      status: response.status,
      bytes,
      chunks,
      lines,
      head,
      tail,
      firstByteMs,
      totalMs: performance.now() - started,
      rssGrowthMb: (peakRss - baseline.rss) / MB,
      heapGrowthMb: (peakHeap - baseline.heapUsed) / MB,
      liveHeapGrowthMb: (peakLiveHeap - baseline.heapUsed) / MB,
    };
  } finally {
    clearInterval(sampler);
  }
}

const round = (value: number) => Math.round(value * 10) / 10;

describe(`statements of a year of ${ENTRIES} entries on PostgreSQL`, () => {
  let bank: TestApp;
  let owner: Customer;
  let baseUrl: string;

  beforeAll(async () => {
    bank = await testApp();
    expect(bank.database.handle.engine).toBe('postgres');
    owner = await bank.customer();
    const started = performance.now();
    // One transaction every 315 s: 100,000 of them fill 2025 (364.6 days).
    await insertBulkHistory(bank.database.handle, owner.account, { count: ENTRIES, start: '2025-01-01T00:00:00Z', stepSeconds: 315 });
    await sql`ANALYZE journal_entries, transactions, accounts`.execute(bank.database.handle.db);
    console.log(`inserted ${ENTRIES} transactions (${2 * ENTRIES} journal entries) in ${Math.round(performance.now() - started)} ms`);
    await bank.app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(bank.app.server.address() as AddressInfo).port}`;
  }, 300_000);

  it('streams the CSV: every row, the first bytes long before the last, in flat memory', async () => {
    const csv = await download(`${baseUrl}/accounts/${owner.account.id}/statement?format=csv&from=2025-01-01&to=2025-12-31`, owner.token!);
    console.log(
      `CSV: ${csv.lines} lines, ${round(csv.bytes / MB)} MB in ${csv.chunks} chunks; first byte after ${Math.round(csv.firstByteMs)} ms, ` +
        `all after ${Math.round(csv.totalMs)} ms; peak growth during the download: RSS +${round(csv.rssGrowthMb)} MB, heap +${round(csv.heapGrowthMb)} MB (live +${round(csv.liveHeapGrowthMb)} MB)`,
    );
    expect(csv.status).toBe(200);
    expect(csv.head.startsWith('transaction_id,posted_at,type,description,counterparty,amount,balance_after\r\n')).toBe(true);
    // The header row, then one line per entry (descriptions here hold no line break).
    expect(csv.lines).toBe(ENTRIES + 1);
    expect(csv.chunks).toBeGreaterThan(10);
    expect(csv.firstByteMs).toBeLessThan(csv.totalMs / 2);
    expect(csv.heapGrowthMb).toBeLessThan(150);
    expect((await bank.admin.get('/reports/reconciliation')).data).toMatchObject({ ok: true });
  }, 120_000);

  it('streams the PDF the same way, page by page', async () => {
    const pdf = await download(`${baseUrl}/accounts/${owner.account.id}/statement?format=pdf&from=2025-01-01&to=2025-12-31`, owner.token!);
    console.log(
      `PDF: ${round(pdf.bytes / MB)} MB in ${pdf.chunks} chunks; first byte after ${Math.round(pdf.firstByteMs)} ms, all after ${Math.round(pdf.totalMs)} ms; ` +
        `peak growth during the download: RSS +${round(pdf.rssGrowthMb)} MB, heap +${round(pdf.heapGrowthMb)} MB (live +${round(pdf.liveHeapGrowthMb)} MB)`,
    );
    expect(pdf.status).toBe(200);
    expect(pdf.head.startsWith('%PDF-')).toBe(true);
    expect(pdf.tail).toMatch(/%%EOF\s*$/);
    expect(pdf.chunks).toBeGreaterThan(10);
    expect(pdf.firstByteMs).toBeLessThan(pdf.totalMs / 2);
    expect(pdf.heapGrowthMb).toBeLessThan(150);
  }, 300_000);

  it('answers balance?at from one index probe, however long the history', async () => {
    const plan = await sql<{ 'QUERY PLAN': string }>`
      EXPLAIN ANALYZE SELECT balance_after FROM journal_entries
      WHERE account_id = ${owner.account.id}::uuid AND posted_at <= ${'2025-07-01T00:00:00Z'}::timestamptz
      ORDER BY posted_at DESC, id DESC LIMIT 1`.execute(bank.database.handle.db);
    const text = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
    expect(text).toContain('Index Scan Backward using journal_entries_account_idx');

    const instants = Array.from({ length: 50 }, (_, i) => new Date(Date.parse('2025-01-01T00:00:00Z') + i * 7 * 86_400_000).toISOString());
    const timings: number[] = [];
    for (const at of instants) {
      const started = performance.now();
      const response = await owner.get(`/accounts/${owner.account.id}/balance?at=${at}`);
      timings.push(performance.now() - started);
      expect(response.statusCode).toBe(200);
    }
    timings.sort((a, b) => a - b);
    const execution = /Execution Time: ([\d.]+) ms/.exec(text)?.[1];
    console.log(
      `balance?at over ${ENTRIES} entries: database ${execution} ms; whole request (inject) median ${round(timings[25]!)} ms, ` +
        `p90 ${round(timings[45]!)} ms, max ${round(timings[49]!)} ms\n${text}`,
    );
    // The balance at the end of the year is the closing balance of the year's statement.
    const year = (await owner.get(`/accounts/${owner.account.id}/balance?at=2025-12-31T23:59:59.999Z`)).data.balance;
    const header = await owner.get(`/accounts/${owner.account.id}/statement?from=2025-12-31&to=2025-12-31`);
    expect(header.data.closing_balance).toBe(year);
  }, 120_000);
});
