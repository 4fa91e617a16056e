import type { FastifyInstance } from 'fastify';
import { isSafeNumber, parse } from 'lossless-json';
import { DomainError } from '../errors.js';

/**
 * A JSON number whose double holds exactly the digits written becomes that number; any other (more
 * significant digits than a double keeps, `10.000000000000000001`, `12345678901234567890`) stays the
 * text the client wrote. JSON.parse would round it to a double first, and `10.000000000000000001`
 * would become 10 and move ten dollars; as text, an amount is judged by its digits (src/money.ts
 * parseAmount), and a field that must be an integer refuses a string.
 */
function numberAsWritten(text: string): number | string {
  return isSafeNumber(text) ? Number(text) : text;
}

/** Parses a JSON request body, keeping the digits of numbers that a double would change. */
export function parseJsonBody(text: string): unknown {
  try {
    return parse(text, null, numberAsWritten);
  } catch (error) {
    // lossless-json descends recursively: nesting deep enough exhausts the stack, which is the client's
    // doing (the body limit allows 64 KiB of brackets), not the service's.
    if (error instanceof RangeError) throw new DomainError('bad_request', 'The JSON body nests too deeply');
    if (error instanceof SyntaxError) throw new DomainError('bad_request', `The body is not valid JSON: ${error.message}`);
    throw error;
  }
}

/**
 * JSON bodies are read by parseJsonBody instead of Fastify's JSON.parse. An empty body means none (an
 * optional body is then validated as `{}`). Keys are own properties: a `__proto__` key is a field like
 * any other, refused by the schemas as unknown, never a prototype.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, body === '' ? undefined : parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}
