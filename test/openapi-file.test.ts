/**
 * openapi.json at the repository's root is the document the service serves at /openapi.json: a change to
 * a route schema that is not in the committed file (or the other way round) fails here.
 * `npm run openapi:write` (scripts/openapi.ts) rewrites it.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_FILE, renderOpenApi } from '../scripts/openapi.js';
import { testApp } from './helpers/app.js';

/** Where two texts first differ, line by line, for a failure message that points at the change. */
function firstDifference(served: string, committed: string): string {
  const a = served.split('\n');
  const b = committed.split('\n');
  const line = a.findIndex((text, i) => text !== b[i]);
  const at = line === -1 ? a.length : line;
  return `first difference at line ${at + 1}:\n  served:    ${a[at] ?? '<end of document>'}\n  committed: ${b[at] ?? '<end of file>'}`;
}

// The document is built from the route schemas alone, whatever the database engine: one run is enough.
describe.skipIf(process.env.TEST_DB === 'postgres')('openapi.json', () => {
  let served: string;

  beforeAll(async () => {
    const { app } = await testApp();
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    // Rendered from the body as served, so the keys keep the order the service sends them in.
    served = renderOpenApi(response.body);
  });

  it('is the document the service serves at /openapi.json', () => {
    const committed = readFileSync(OPENAPI_FILE, 'utf8');
    const message = `openapi.json is out of date: run \`npm run openapi:write\` and review the difference (${firstDifference(served, committed)})`;
    expect(served === committed, message).toBe(true);
  });
});
