import { randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../config.js';
import { problem, sendProblem } from './errors.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

// A client's request id is echoed only if it is short and plain, so it cannot inject into logs or headers.
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function createAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ allErrors: true, coerceTypes, useDefaults: true, removeAdditional: false, strict: false });
  addFormats.default(ajv);
  return ajv;
}

/** Bodies are taken as sent (no "true" -> true); query strings and params are text, so they are coerced. */
const strictAjv = createAjv(false);
const coercingAjv = createAjv(true);

export function validatorCompiler({ schema, httpPart }: { schema: object; httpPart?: string }) {
  return (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema);
}

/** The server options: one function for server.ts and the tests, so tests run what production runs. */
export function fastifyOptions(config: Config, logger: FastifyServerOptions['logger'] = true): FastifyServerOptions {
  return {
    logger:
      logger === true
        ? { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.access_token'] }
        : logger,
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { ignoreTrailingSlash: true },
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && CLIENT_REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestTimeout: 30_000,
    trustProxy: false,
    // The router refuses some paths before any route, hook or error handler runs (a segment that is
    // not UTF-8 once percent-decoded, a parameter past maxParamLength); they answer problem+json too.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        void sendProblem(
          reply,
          problem('validation_error', 'A path parameter is longer than 100 characters', [{ field: 'path', message: 'is too long' }]),
        );
        return;
      }
      void sendProblem(reply, problem('bad_request', 'The URL is not valid: a path segment is not percent-encoded UTF-8'));
    },
  };
}
