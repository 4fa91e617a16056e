/**
 * openapi.json at the repository's root: the OpenAPI document the service serves at /openapi.json,
 * generated from the route schemas. `npm run openapi:write` writes it; test/openapi-file.test.ts fails
 * when the served document and the committed file differ.
 *
 * The app is built as the tests build it, by the same buildApp as production, on an in-memory PGlite,
 * and never listens: the document is asked for with inject. It depends on the route schemas only, not on
 * the configuration or the database, so a fixed configuration gives the same file on every machine.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/connection.js';
import { migrate } from '../src/db/migrate.js';

export const OPENAPI_FILE = fileURLToPath(new URL('../openapi.json', import.meta.url));

/**
 * The file's text for a served document: its JSON as served (the same key order), two spaces of
 * indentation and a trailing newline.
 */
export function renderOpenApi(servedBody: string): string {
  return `${JSON.stringify(JSON.parse(servedBody), null, 2)}\n`;
}

/** A fixed configuration: nothing read from the environment, no .env, no secret generated on disk. */
const ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  JWT_SECRET: 'openapi-document-generation-only-not-a-real-secret',
  DATA_DIR: '/nonexistent-openapi-data-dir',
};

/** The body of GET /openapi.json, as an app on a fresh in-memory PGlite serves it. */
export async function servedOpenApi(): Promise<string> {
  const database = await openDatabase({ databaseUrl: undefined, dataDir: 'memory://' });
  try {
    await migrate(database);
    const app = await buildApp({ config: loadConfig(ENV), database, logger: false });
    try {
      const response = await app.inject({ method: 'GET', url: '/openapi.json' });
      if (response.statusCode !== 200) throw new Error(`GET /openapi.json answered ${response.statusCode}: ${response.body}`);
      return response.body;
    } finally {
      await app.close();
    }
  } finally {
    await database.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(OPENAPI_FILE, renderOpenApi(await servedOpenApi()));
  console.log(`wrote ${OPENAPI_FILE}`);
}
