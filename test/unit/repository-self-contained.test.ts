import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The repository carries its own docs: nothing in it refers to the `../shared` folder that sits beside
 * the checkouts where it is developed, except .ci/run, which notes that it may be absent.
 */
describe('the repository', () => {
  it('refers to no ../shared outside .ci/run', () => {
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { encoding: 'utf8' })
      .split('\n')
      .filter((path) => path && path !== '.ci/run' && path !== 'test/unit/repository-self-contained.test.ts');
    const referring = files.filter((path) => {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        return false;
      }
      return text.includes('../shared');
    });
    expect(referring).toEqual([]);
  });
});
