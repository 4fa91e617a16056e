import type { FastifyInstance } from 'fastify';
import { validationError } from './errors.js';

/**
 * The path of the first string holding U+0000 inside a parsed JSON value, or undefined. Iterative, not
 * recursive: a 64 KiB body can nest thirty thousand levels deep, past the call stack.
 */
function findNul(root: unknown): string | undefined {
  const pending: Array<[unknown, string]> = [[root, '']];
  while (pending.length > 0) {
    const [value, path] = pending.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path;
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => pending.push([item, `${path}[${i}]`]));
    } else if (value && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) pending.push([item, path ? `${path}.${key}` : key]);
    }
  }
  return undefined;
}

/**
 * PostgreSQL text cannot hold U+0000, so a NUL anywhere in the input would fail deep in a query as a
 * 500. It is refused at the edge as the 422 it is, naming the field.
 */
export function refuseNulCharacters(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const field = findNul(request.body) ?? findNul(request.query) ?? findNul(request.params);
    if (field !== undefined) throw validationError(field || 'body', 'must not contain the NUL character');
  });
}
