import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The sibling folder beside the checkouts where the project is developed, which a user who clones it
// does not have. Spelled in parts, so that this file does not name it itself.
const SIBLING_FOLDER = ['..', 'shared'].join('/');

/** The repository carries its own docs: only .ci/run, which notes that the folder may be absent, names it. */
describe('the repository', () => {
  it('refers to no folder outside itself, except in .ci/run', () => {
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { encoding: 'utf8' })
      .split('\n')
      .filter((path) => path && path !== '.ci/run');
    const referring = files.filter((path) => {
      try {
        return readFileSync(path, 'utf8').includes(SIBLING_FOLDER);
      } catch {
        return false;
      }
    });
    expect(referring).toEqual([]);
  });
});
