// tsc compiles only TypeScript; the SQL ships beside the compiled code, where the migrator looks for it:
// the numbered migrations in dist/db/migrations/, each domain's repeatable files in dist/<domain>/sql/.
// Each copy replaces the previous one, so that a file renamed or removed in src/ does not linger in dist/.
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';

/** The `<domain>/sql` folders under root. */
function repeatableFolders(root) {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(`${root}/${entry.name}/sql`))
    .map((entry) => `${entry.name}/sql`);
}

for (const folder of ['db/migrations', ...repeatableFolders('dist')]) rmSync(`dist/${folder}`, { recursive: true, force: true });
for (const folder of ['db/migrations', ...repeatableFolders('src')]) cpSync(`src/${folder}`, `dist/${folder}`, { recursive: true });
