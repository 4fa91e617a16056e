import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from './helpers/app.js';

describe('operations endpoints', () => {
  let bank: TestApp;
  beforeAll(async () => {
    bank = await testApp();
  });

  it('answers health and readiness', async () => {
    expect((await bank.anonymous.get('/health')).data).toEqual({ status: 'ok' });
    const ready = await bank.anonymous.get('/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.data).toEqual({ status: 'ok' });
  });

  it('exposes Prometheus metrics with request latency and problem codes', async () => {
    await bank.anonymous.get('/accounts/');
    const metrics = await bank.anonymous.get('/metrics');
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.body).toMatch(/http_request_duration_seconds_bucket\{[^}]*route="\/health"/);
    expect(metrics.body).toMatch(/http_problems_total\{code="unauthorized"\} [1-9]/);
    expect(metrics.body).toMatch(/nodejs_eventloop_lag_seconds/);
  });

  it('answers an unknown route with a problem, and every answer carries a request id', async () => {
    const missing = await bank.anonymous.get('/nowhere');
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(missing.data.code).toBe('not_found');
    expect(missing.headers['x-request-id']).toEqual(expect.any(String));
  });
});
