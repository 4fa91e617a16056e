import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpLoad, percentile } from '../../scripts/bench/http-load.js';

/**
 * The benchmark's load generator (scripts/bench/http-load.ts) against a local HTTP server: its counts
 * are the benchmark's figures, so they must be exact whatever way the answers arrive.
 */
let server: Server;
let url: string;
const seen: { method: string; path: string; key: string | undefined; body: string }[] = [];

beforeAll(async () => {
  let n = 0;
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      seen.push({ method: request.method!, path: request.url!, key: request.headers['idempotency-key'] as string | undefined, body });
      n++;
      // Every third answer is a refusal; every answer goes out in two writes, its headers apart from its body.
      const refusal = n % 3 === 0;
      const answer = JSON.stringify(refusal ? { code: 'insufficient_funds', detail: 'x'.repeat(3000) } : { ok: true, n });
      response.writeHead(refusal ? 422 : 201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      response.flushHeaders();
      setTimeout(() => response.end(answer), 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe('the benchmark load generator', () => {
  it('counts every answer within the run once, tells refusals apart, and measures each one', async () => {
    let made = 0;
    const result = await httpLoad({
      url,
      connections: 4,
      seconds: 0.5,
      next: () => ({ method: 'POST', path: '/transfer', headers: { 'idempotency-key': `k${++made}` }, body: JSON.stringify({ made }) }),
      classify: (status, body) => `${status} ${JSON.parse(body).code}`,
    });
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.answers).toBeGreaterThan(20);
    // Answers that came after the run's end were awaited, not counted: at most one per connection.
    expect(seen.length - result.answers).toBeGreaterThanOrEqual(0);
    expect(seen.length - result.answers).toBeLessThanOrEqual(4);
    expect(result.ok + (result.refused['422 insufficient_funds'] ?? 0)).toBe(result.answers);
    expect(Object.keys(result.refused)).toEqual(['422 insufficient_funds']);
    expect(result.latenciesMs).toHaveLength(result.answers);
    expect(result.latenciesMs.every((ms) => ms > 0)).toBe(true);
    // The requests went out whole, each with its own key and body.
    expect(new Set(seen.map((request) => request.key)).size).toBe(seen.length);
    expect(seen.every((request) => request.method === 'POST' && request.path === '/transfer' && JSON.parse(request.body).made > 0)).toBe(
      true,
    );
  });

  it('counts a connection the server refuses as an error, not as an answer', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await httpLoad({
      url: `http://127.0.0.1:${port}`,
      connections: 2,
      seconds: 0.2,
      next: () => ({ method: 'GET', path: '/', headers: {} }),
      classify: () => 'refused',
    });
    expect(result).toMatchObject({ answers: 0, ok: 0, errors: 2 });
  });

  it('takes percentiles as the smallest value with at least that share at or below it', () => {
    const sorted = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect([percentile(sorted, 50), percentile(sorted, 90), percentile(sorted, 99), percentile(sorted, 100)]).toEqual([5, 9, 10, 10]);
    expect(percentile(new Float64Array(), 50)).toBe(0);
  });
});
