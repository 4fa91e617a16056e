import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * README.md's walk-through, top to bottom, as a new user pastes it: scripts/readme-walk.sh extracts its
 * shell blocks, starts a fresh server (src/server.ts through tsx, PGlite in a temporary DATA_DIR, a free
 * port) and runs them with `set -Eeuo pipefail`. The script only ever uses PGlite, so it runs once, in the
 * pglite project. It needs curl and jq, as the README does (.ci/run installs jq).
 */

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const WALK_TIMEOUT_MS = 150_000;

function runWalk(): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout stops the script and, through its trap, its server.
    const child = spawn('bash', ['scripts/readme-walk.sh', '--source'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, API: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n[test] the walk took more than ${WALK_TIMEOUT_MS} ms: SIGTERM to its process group\n`;
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    }, WALK_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

describe.skipIf(process.env.TEST_DB === 'postgres')('the README walk-through (scripts/readme-walk.sh)', () => {
  it(
    'runs every shell block through "Configuration" against a fresh server without an error',
    async () => {
      const startedAt = performance.now();
      const { code, signal, output } = await runWalk();
      console.log(`readme-walk: ${Math.round(performance.now() - startedAt)} ms`);
      expect({ code, signal }, output).toEqual({ code: 0, signal: null });
      expect(output).toMatch(/^readme-walk: OK, \d+ blocks in \d+ s$/m);
    },
    WALK_TIMEOUT_MS + 30_000,
  );
});
