import type { FastifyInstance } from 'fastify';
import { validationError } from '../errors.js';

// U+0000, or a UTF-16 surrogate without its partner (JSON's "\ud800").
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The path of the first string inside a parsed JSON value that PostgreSQL cannot store, or undefined.
 * Iterative, not recursive: a 64 KiB body can nest thirty thousand levels deep, past the call stack.
 */
function findUnstorable(root: unknown): string | undefined {
  const pending: Array<[unknown, string]> = [[root, '']];
  while (pending.length > 0) {
    const [value, path] = pending.pop()!;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) return path;
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => pending.push([item, `${path}[${i}]`]));
    } else if (value && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) pending.push([item, path ? `${path}.${key}` : key]);
    }
  }
  return undefined;
}

/**
 * PostgreSQL text cannot hold U+0000, and its json cannot hold half of a surrogate pair (a lone
 * surrogate is not Unicode text at all), so either would fail deep in a query as a 500. They are
 * refused at the edge as the 422 they are, naming the field.
 */
export function refuseUnstorableText(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const field = findUnstorable(request.body) ?? findUnstorable(request.query) ?? findUnstorable(request.params);
    if (field !== undefined) throw validationError(field || 'body', 'must be Unicode text without the NUL character');
  });
}
