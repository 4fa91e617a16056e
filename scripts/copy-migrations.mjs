// tsc compiles only TypeScript; the SQL migrations ship beside the compiled migrator. The copy replaces
// the previous one, so that a migration renamed or removed in src/ does not linger in dist/.
import { cpSync, rmSync } from 'node:fs';
rmSync('dist/db/migrations', { recursive: true, force: true });
cpSync('src/db/migrations', 'dist/db/migrations', { recursive: true });
