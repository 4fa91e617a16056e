import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/db/connection.js';
import { migrate } from '../../src/db/migrate.js';

/**
 * Vitest global setup: one migrated PGlite, dumped to a file that every PGlite test database starts
 * from. A new PGlite runs initdb inside WebAssembly (seconds); loading a dump skips it.
 */
export default async function setup({ provide }: { provide: (key: 'pgliteTemplate', value: string) => void }) {
  const handle = await openDatabase({ databaseUrl: undefined, dataDir: 'memory://' });
  await migrate(handle);
  const file = join(tmpdir(), `bank-pglite-template-${process.pid}.tar`);
  writeFileSync(file, Buffer.from(await (await handle.pglite!.dumpDataDir('none')).arrayBuffer()));
  await handle.close();
  provide('pgliteTemplate', file);
  return () => rmSync(file, { force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
  }
}
