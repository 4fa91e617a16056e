import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { databaseTrouble } from '../db/transaction.js';
import { DomainError, type ErrorCode, type FieldError } from '../errors.js';

/**
 * The HTTP status of each error code (src/errors.ts): the one place where the rules' errors meet HTTP.
 * Services throw DomainError with a code; they know nothing of statuses.
 */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = {
  validation_error: 422,
  bad_request: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  forbidden: 403,
  not_found: 404,
  user_not_found: 404,
  account_not_found: 404,
  method_not_allowed: 405,
  email_taken: 409,
  account_not_active: 409,
  account_closed: 409,
  balance_not_zero: 409,
  not_pending: 409,
  already_reversed: 409,
  not_reversible: 409,
  idempotency_in_progress: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  user_not_customer: 422,
  insufficient_funds: 422,
  daily_limit_exceeded: 422,
  currency_mismatch: 422,
  idempotency_key_reused: 422,
  overpayment: 422,
  too_many_attempts: 429,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
};

const TITLES: Partial<Record<ErrorCode, string>> = {
  validation_error: 'Validation failed',
  unauthorized: 'Authentication required',
  forbidden: 'Forbidden',
  internal_error: 'Internal server error',
  service_unavailable: 'Service unavailable',
};

function titleOf(code: ErrorCode): string {
  return TITLES[code] ?? code.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  errors?: FieldError[];
}

export function problem(code: ErrorCode, detail: string, errors?: FieldError[]): Problem {
  return {
    type: `https://errors.banking.example/${code.replace(/_/g, '-')}`,
    title: titleOf(code),
    status: ERROR_STATUS[code],
    detail,
    code,
    ...(errors ? { errors } : {}),
  };
}

declare module 'fastify' {
  interface FastifyReply {
    /** The stable code of a problem answer, for metrics. */
    problemCode: ErrorCode | null;
  }
}

export function sendProblem(reply: FastifyReply, body: Problem, retryAfterSeconds?: number): FastifyReply {
  reply.problemCode = body.code;
  if (body.status === 401) reply.header('www-authenticate', 'Bearer');
  if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds));
  return reply.code(body.status).type('application/problem+json').send(body);
}

/**
 * AJV's instancePath ("/amount") and missingProperty become the field a client can show next to an input.
 * A value that matches no branch of a union (`anyOf`) gets one message naming the types it may take,
 * instead of one per branch and one for the union.
 */
function fieldErrors(error: FastifyError): FieldError[] {
  const issues = error.validation ?? [];
  const unions = new Set(issues.filter((issue) => issue.keyword === 'anyOf').map((issue) => issue.instancePath));
  const unionTypes = new Map<string, string[]>();
  for (const issue of issues) {
    const type = (issue.params as { type?: unknown }).type;
    if (unions.has(issue.instancePath) && issue.keyword === 'type' && typeof type === 'string') {
      unionTypes.set(issue.instancePath, [...(unionTypes.get(issue.instancePath) ?? []), type]);
    }
  }
  const collapsed = issues.flatMap((issue) => {
    if (!unions.has(issue.instancePath)) return [issue];
    if (issue.keyword !== 'anyOf') return [];
    const types = unionTypes.get(issue.instancePath);
    return [{ ...issue, message: types ? `must be a ${types.join(' or a ')}` : 'does not have an accepted form' }];
  });
  return collapsed.map((issue) => {
    const params = issue.params;
    const path = issue.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const leaf = (params.missingProperty ?? params.additionalProperty) as string | undefined;
    const field = [path, leaf].filter(Boolean).join('.') || (error.validationContext ?? 'body');
    return { field, message: messageOf(issue.keyword, params, issue.message) };
  });
}

// What a newcomer's usual mistakes need to hear, in the field's own terms; Ajv's wording otherwise.
const FORMAT_MESSAGES: Readonly<Record<string, string>> = {
  date: 'must be a calendar day, YYYY-MM-DD (2026-12-01)',
  'date-time': 'must be an ISO 8601 instant (2026-12-01T09:30:00Z)',
  uuid: 'must be an id (a UUID); an account number is not an id',
};

function messageOf(keyword: string, params: Record<string, unknown>, ajvMessage: string | undefined): string {
  if (params.additionalProperty) return 'is not an accepted field';
  if (keyword === 'required') return 'is required';
  if (keyword === 'format' && typeof params.format === 'string' && FORMAT_MESSAGES[params.format]) return FORMAT_MESSAGES[params.format]!;
  return ajvMessage ?? 'is invalid';
}

/** What a client that sent a body in a type no route here reads needs to hear. */
function unsupportedMediaTypeDetail(request: FastifyRequest): string {
  const type = request.headers['content-type'];
  return type === undefined
    ? 'The request has a body but no content-type; send it as JSON with content-type: application/json'
    : `The body is ${type.split(';')[0]}; this endpoint takes JSON (content-type: application/json)`;
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.decorateReply('problemCode', null);
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof DomainError) {
      // A refusal stored under an Idempotency-Key and answered again (src/http/idempotency.ts).
      if (error.extra.replayed) reply.header('idempotent-replayed', 'true');
      return sendProblem(reply, problem(error.code, error.message, error.extra.errors), error.extra.retryAfterSeconds);
    }
    if (error.validation) {
      const errors = fieldErrors(error);
      const context = error.validationContext ?? 'request';
      const detail = errors.length === 1 ? `${errors[0]!.field} ${errors[0]!.message}` : `The ${context} is not valid`;
      return sendProblem(reply, problem('validation_error', detail, errors));
    }
    const trouble = databaseTrouble(error);
    if (trouble) {
      request.log.warn({ err: error }, trouble === 'busy' ? 'database saturated' : 'database unavailable');
      const detail =
        trouble === 'busy' ? 'The service is saturated; try again shortly' : 'The database is not reachable; try again shortly';
      return sendProblem(reply.header('retry-after', '1'), problem('service_unavailable', detail));
    }
    const status = error.statusCode ?? 500;
    if (status === 415) return sendProblem(reply, problem('unsupported_media_type', unsupportedMediaTypeDetail(request)));
    if (status >= 400 && status < 500) {
      // Fastify's own client errors: body too large, a malformed header, ...
      const code: ErrorCode = status === 413 ? 'payload_too_large' : status === 429 ? 'rate_limited' : 'bad_request';
      return sendProblem(reply, { ...problem(code, error.message), status });
    }
    request.log.error({ err: error }, 'unexpected error');
    return sendProblem(reply, problem('internal_error', `Something went wrong; quote request id ${request.id} when reporting it`));
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem('not_found', `No route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
