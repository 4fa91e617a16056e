/**
 * The service's stable error codes (the API's `code`) and the error every domain throws with one. A
 * domain says what went wrong, never how HTTP answers it: ERROR_STATUS in src/http/errors.ts maps each
 * code to its status, the one place where the rules' errors meet HTTP.
 */
export type ErrorCode =
  | 'validation_error'
  | 'bad_request'
  | 'unauthorized'
  | 'invalid_credentials'
  | 'forbidden'
  | 'not_found'
  | 'user_not_found'
  | 'account_not_found'
  | 'method_not_allowed'
  | 'email_taken'
  | 'account_not_active'
  | 'account_closed'
  | 'balance_not_zero'
  | 'not_pending'
  | 'already_reversed'
  | 'not_reversible'
  | 'idempotency_in_progress'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'user_not_customer'
  | 'insufficient_funds'
  | 'daily_limit_exceeded'
  | 'currency_mismatch'
  | 'idempotency_key_reused'
  | 'overpayment'
  | 'too_many_attempts'
  | 'rate_limited'
  | 'internal_error'
  | 'service_unavailable';

export interface FieldError {
  field: string;
  message: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    detail: string,
    readonly extra: { errors?: FieldError[]; retryAfterSeconds?: number; replayed?: boolean } = {},
  ) {
    super(detail);
    this.name = 'DomainError';
  }
}

export function validationError(field: string, message: string): DomainError {
  return new DomainError('validation_error', `${field} ${message}`, { errors: [{ field, message }] });
}
