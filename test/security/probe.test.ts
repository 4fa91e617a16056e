/**
 * No input reaches a 500. A table-driven probe of every operation in the app's own OpenAPI document:
 * each is called by a caller allowed to call it (found by trying), with hostile values for each path,
 * query and header parameter and each top-level body property, one at a time, the rest of the request
 * valid (the ids and account numbers of objects made here, so the hostile value is what gets judged);
 * then with whole-body variants and hostile Authorization and Idempotency-Key headers, and a few
 * explicit extras. Every answer must be below 500, and every refusal problem+json with a `code`.
 *
 * Failures are collected, not thrown, so one run reports them all. PROBE_DUMP=<file> writes every
 * request and its answer there, one a line, to read what the probe saw.
 */
import { randomUUID } from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { decodeJwt, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp, type Client } from '../helpers/app.js';
import { base64url, NOBODY, sign } from './support.js';

const bank = await testApp({
  RATE_LIMIT_TRANSFERS_PER_MINUTE: '100000',
  LOGIN_MAX_FAILURES: '1000',
  // Transfers of 600.00 wait for review (approve and reject need them); nothing else flags a transfer.
  REVIEW_THRESHOLD: '500.00',
  RISK_VELOCITY_COUNT: '0',
  RISK_NEW_PAYEE_AMOUNT: '0',
  RISK_NEW_ACCOUNT_AMOUNT: '0',
  DAILY_TRANSFER_LIMIT: '100000000.00',
});

/** Requests in flight at once: PGlite has one connection, so more only queue. */
const GROUP = 16;

// ---------------------------------------------------------------------------------------------------
// The OpenAPI document, as much of it as the probe reads
// ---------------------------------------------------------------------------------------------------

interface Schema {
  type?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  anyOf?: Schema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  $ref?: string;
}

interface OpenApiOperation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: Schema }>;
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  security?: unknown[];
}

interface OpenApi {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, Schema> };
}

type Where = 'path' | 'query' | 'header' | 'body' | 'form';

interface Field {
  name: string;
  in: Where;
  schema: Schema;
}

interface Operation {
  method: string;
  /** The OpenAPI path, `{id}` and all. */
  path: string;
  key: string;
  isPublic: boolean;
  fields: Field[];
  /** It takes a JSON body (a POST or PATCH), whether or not it declares one. */
  takesBody: boolean;
}

const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

function operationsOf(doc: OpenApi): Operation[] {
  const resolve = (schema: Schema | undefined): Schema => {
    const ref = schema?.$ref?.replace(/#$/, '').split('/').at(-1);
    return (ref && doc.components?.schemas?.[ref]) || schema || {};
  };
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.has(method)) continue;
      const fields: Field[] = (op.parameters ?? [])
        .filter((p) => p.in === 'path' || p.in === 'query' || p.in === 'header')
        .map((p) => ({ name: p.name, in: p.in as Where, schema: resolve(p.schema) }));
      for (const [type, where] of [
        ['application/json', 'body'],
        ['application/x-www-form-urlencoded', 'form'],
      ] as const) {
        const body = resolve(op.requestBody?.content?.[type]?.schema);
        for (const [name, schema] of Object.entries(body.properties ?? {})) fields.push({ name, in: where, schema: resolve(schema) });
      }
      const upper = method.toUpperCase();
      operations.push({
        method: upper,
        path,
        key: `${upper} ${path}`,
        isPublic: Array.isArray(op.security) && op.security.length === 0,
        fields,
        takesBody: upper !== 'GET' && upper !== 'DELETE',
      });
    }
  }
  return operations;
}

// ---------------------------------------------------------------------------------------------------
// Hostile values, a small table per kind
// ---------------------------------------------------------------------------------------------------

/**
 * One hostile value, as raw JSON text (for bodies) and as raw, already percent-encoded text (for paths,
 * query strings and forms); a value that has no sense in one of them leaves it out.
 */
interface Hostile {
  label: string;
  json?: string;
  url?: string;
}

/** Every UTF-8 byte but the unreserved ones percent-encoded. */
function pct(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((byte) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte))
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');
}

/** A JSON value: itself in a body, its text in a URL. */
const value = (label: string, v: unknown): Hostile => ({
  label,
  json: JSON.stringify(v),
  url: pct(typeof v === 'string' ? v : JSON.stringify(v)),
});
/** A literal that reads the same in JSON and in a URL (a number like 1e400). */
const literal = (label: string, text: string): Hostile => ({ label, json: text, url: text });
/** Only in a JSON body. */
const json = (label: string, text: string): Hostile => ({ label, json: text });
/** Only in a URL, verbatim. */
const url = (label: string, text: string): Hostile => ({ label, url: text });
/** Different spellings in JSON and in a URL. */
const both = (label: string, jsonText: string, urlText: string): Hostile => ({ label, json: jsonText, url: urlText });

/** What PostgreSQL cannot store, and JSON's other types, for any field. */
const UNSTORABLE: Hostile[] = [
  both('NUL', '"\\u0000"', '%00'),
  both('lone high surrogate', '"\\ud800"', '%ED%A0%80'),
  both('lone low surrogate', '"\\udc00"', '%ED%B0%80'),
  url('invalid UTF-8', '%FF%FE'),
  url('broken percent-encoding', '%E0%A4%A'),
];
const OTHER_TYPES: Hostile[] = [json('number', '1'), json('true', 'true'), json('null', 'null'), json('array', '[]'), json('object', '{}')];

const NIL = '00000000-0000-0000-0000-000000000000';
const DASHES = '-'.repeat(36);
const HEX36 = '0123456789abcdef0123456789abcdef0123';

function ids(real: string): Hostile[] {
  return [
    value('36 dashes', DASHES),
    value('36 hex digits, no dashes', HEX36),
    value('32 hex digits, no dashes', real.replaceAll('-', '')),
    value('urn:uuid:', `urn:uuid:${real}`),
    value('uppercase', real.toUpperCase()),
    value('in braces', `{${real}}`),
    value('nil UUID', NIL),
    value('max UUID', 'ffffffff-ffff-ffff-ffff-ffffffffffff'),
    value('unknown UUID', randomUUID()),
    value('empty', ''),
    value('very long', 'a'.repeat(5000)),
    value('id + junk', `${real}0`),
    value('id + space', `${real} `),
    both('id + NUL', JSON.stringify(`${real}\u0000`), `${real}%00`),
    value('literal %00', '%00'),
    value('unicode', 'ünïcødé-😀-٣'),
    value(
      'fullwidth digits',
      real.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d))),
    ),
    value('SQL', "' OR '1'='1"),
    url('slash', '%2F'),
    url('dot-dot', '..'),
    json('in an array', JSON.stringify([real])),
    ...UNSTORABLE,
    ...OTHER_TYPES,
  ];
}

const INSTANTS = [
  '0000-01-01',
  '-271821-04-20T00:00:00Z',
  '+275760-09-13T00:00:00Z',
  '2016-12-31T23:59:60Z',
  '9999-12-31T23:59:59Z',
  '0001-01-01T00:00:00Z',
  '0000-01-01T00:00:00Z',
  '2026-02-30',
  '2026-13-01',
  '1970-01-01T00:00:00+14:00',
  '-271821-04-20',
  '+275760-09-13',
  '-000001-01-01',
  '+010000-01-01',
  '10000-01-01',
  '9999-12-31',
  '0001-01-01',
  '1969-12-31',
  '2024-02-29',
  '2026-02-29',
  '2026-01-01T24:00:00Z',
  '2026-01-01T00:00:00',
  '2026-01-01T00:00:00.123456789Z',
  '2026-01-01 00:00:00Z',
  '2026-01-01T00:00:00+99:00',
  '2026-1-1',
  '20260101',
  '2026-01-01T00:00:00Z',
  '2026-01-01',
  'infinity',
  '-infinity',
  'epoch',
  'now',
  'today',
  'allballs',
  '2026-01-01 BC',
  'J2461042',
  '',
  'garbage',
  'x'.repeat(1000),
];
const instants = (): Hostile[] => [...INSTANTS.map((v) => value(v || 'empty', v)), ...UNSTORABLE, ...OTHER_TYPES];

/** Raw base64url of a text: a cursor forged byte for byte. */
const forge = (text: string) => Buffer.from(text).toString('base64url');

function cursors(): Hostile[] {
  return [
    value('forged [min Date, 36 dashes]', base64url(['-271821-04-20T00:00:00Z', DASHES])),
    value('forged [2026, 36 hex digits]', base64url(['2026-01-01T00:00:00Z', HEX36])),
    value('forged [2026, 36 dashes]', base64url(['2026-01-01T00:00:00Z', DASHES])),
    value('forged [2026, dashes in the wrong places]', base64url(['2026-01-01T00:00:00Z', '0123-4567-89ab-cdef-0123-4567-89ab-c'])),
    value('forged [min Date, nil]', base64url(['-271821-04-20T00:00:00Z', NIL])),
    value('forged [max Date, nil]', base64url(['+275760-09-13T00:00:00Z', NIL])),
    value('forged [year 0, nil]', base64url(['0000-01-01T00:00:00Z', NIL])),
    value('forged [year 1, nil]', base64url(['0001-01-01T00:00:00Z', NIL])),
    value('forged [leap second, nil]', base64url(['2016-12-31T23:59:60Z', NIL])),
    value('forged [9999-12-31, max UUID]', base64url(['9999-12-31T23:59:59Z', 'ffffffff-ffff-ffff-ffff-ffffffffffff'])),
    value('forged [date only, nil]', base64url(['2026-01-01', NIL])),
    value('forged [number, nil]', base64url([0, NIL])),
    value('forged [2026, nil, extra]', base64url(['2026-01-01T00:00:00Z', NIL, 'x'])),
    value('forged [1,2]', base64url([1, 2])),
    value('forged {}', base64url({})),
    value('forged null', base64url(null)),
    value('forged []', base64url([])),
    value('forged "x"', base64url('x')),
    value('forged {"__proto__":…}', forge('{"__proto__":{"x":1},"0":"2026-01-01T00:00:00Z"}')),
    value('forged deep array', forge('['.repeat(70) + ']'.repeat(70))),
    value('forged lone surrogate id', forge(`["2026-01-01T00:00:00Z","\\ud800${'0'.repeat(35)}"]`)),
    value('garbage', '!!!not a cursor!!!'),
    value('base64 of garbage', forge('garbage')),
    value('standard base64, padded', Buffer.from(JSON.stringify(['2026-01-01T00:00:00Z', NIL]) + ' ').toString('base64')),
    value('exactly 200 characters', 'A'.repeat(200)),
    value('very long', 'A'.repeat(5000)),
    value('empty', ''),
    ...UNSTORABLE,
    ...OTHER_TYPES,
  ];
}

function amounts(): Hostile[] {
  return [
    literal('10.000000000000000001 (a JSON number)', '10.000000000000000001'),
    literal('1e400', '1e400'),
    literal('-0', '-0'),
    literal('1e-7', '1e-7'),
    literal('31 digits (a JSON number)', '1234567890123456789012345678901'),
    value('31 digits (a string)', '1234567890123456789012345678901'),
    literal('2^53 + 1', '9007199254740993'),
    literal('5e-324', '5e-324'),
    literal('1e21', '1e21'),
    literal('0.1 + 0.2', String(0.1 + 0.2)),
    literal('1.005', '1.005'),
    literal('-1', '-1'),
    literal('0', '0'),
    literal('999999999999.99 (a JSON number)', '999999999999.99'),
    literal('1e12', '1e12'),
    value('"NaN"', 'NaN'),
    value('"Infinity"', 'Infinity'),
    value('"-Infinity"', '-Infinity'),
    value('"1e2"', '1e2'),
    value('"0x10"', '0x10'),
    value('"-1.00"', '-1.00'),
    value('"0.00"', '0.00'),
    value('"0.001"', '0.001'),
    value('" 1.00"', ' 1.00'),
    value('"1,00"', '1,00'),
    value('"+1.00"', '+1.00'),
    value('".5"', '.5'),
    value('"5."', '5.'),
    value('fullwidth digits', '１.００'),
    value('Arabic-Indic digits', '١٫٠٠'),
    value('"999999999999.99"', '999999999999.99'),
    value('"1000000000000.00"', '1000000000000.00'),
    value('32 characters', '00000000000000000000000000001.00'),
    value('empty', ''),
    both('"1.00" + NUL', '"1.00\\u0000"', '1.00%00'),
    ...UNSTORABLE,
    ...OTHER_TYPES,
  ];
}

function integers(schema: Schema): Hostile[] {
  const bounds = [schema.minimum, schema.maximum].flatMap((n, i) => (n === undefined ? [] : [String(i === 0 ? n - 1 : n + 1)]));
  return [
    ...[...new Set(['0', '-1', ...bounds, '1.5', '1e309', '1e400', '99999999999999999999', '-0', '9007199254740993', '1e2', '1.0'])].map(
      (n) => literal(n, n),
    ),
    value('"abc"', 'abc'),
    value('empty', ''),
    value('" 5"', ' 5'),
    value('"0x10"', '0x10'),
    value('"NaN"', 'NaN'),
    value('"Infinity"', 'Infinity'),
    value('"12"', '12'),
    url('true', 'true'),
    ...UNSTORABLE,
    ...OTHER_TYPES,
  ];
}

function enums(schema: Schema): Hostile[] {
  const first = String(((schema.enum ?? schema.anyOf?.flatMap((b) => b.enum ?? []))?.[0] as string | number | undefined) ?? 'x');
  return [
    value('unknown', 'bogus'),
    value('uppercase', first.toUpperCase()),
    value('empty', ''),
    value('__proto__', '__proto__'),
    value('constructor', 'constructor'),
    value('toString', 'toString'),
    value('trailing space', `${first} `),
    both('value + NUL', JSON.stringify(`${first}\u0000`), `${first}%00`),
    json('in an array', JSON.stringify([first])),
    ...UNSTORABLE,
    ...OTHER_TYPES,
  ];
}

const booleans = (): Hostile[] => [
  value('"true"', 'true'),
  value('"false"', 'false'),
  json('0', '0'),
  json('1', '1'),
  json('null', 'null'),
  json('[]', '[]'),
  json('{}', '{}'),
  value('empty', ''),
];

function accountNumbers(real: string): Hostile[] {
  const luhnBroken = real.slice(0, 9) + String((Number(real[9]) + 1) % 10);
  return [
    value('bad check digit', luhnBroken),
    value('all zeros', '0000000000'),
    value('all nines', '9999999999'),
    value('valid, no such account', NOBODY),
    value('11 digits', `${real}0`),
    value('9 digits', real.slice(1)),
    value(
      'fullwidth digits',
      real.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d))),
    ),
    value(
      'Arabic-Indic digits',
      real.replace(/[0-9]/g, (d) => String.fromCharCode(0x0660 + Number(d))),
    ),
    json('a JSON number', real),
    value('with a space', `${real.slice(0, 5)} ${real.slice(5)}`),
    value('empty', ''),
    ...UNSTORABLE,
    ...OTHER_TYPES,
  ];
}

function strings(name: string, schema: Schema): Hostile[] {
  const max = schema.maxLength ?? 1000;
  const extra: Record<string, Hostile[]> = {
    email: [
      value('no dot', 'a@b'),
      value('two @', 'a@b@bank.test'),
      value('quoted local part', '"a b"@bank.test'),
      value('unicode', 'ünï@bänk.test'),
      value('255 characters', `${'a'.repeat(245)}@bank.test`),
      value('padded', ' admin@bank.test '),
      value('uppercase admin', 'ADMIN@BANK.TEST'),
    ],
    currency: [value('EUR', 'EUR'), value('XXX', 'XXX'), value('lowercase', 'usd'), value('ZZZ', 'ZZZ')],
    action: [value('a.b', 'a.b'), value('long', `${'a'.repeat(5000)}.b`)],
    target_type: [value('account', 'account')],
    target_id: ids(randomUUID()),
  };
  const passwords = [
    value('73 bytes', 'x'.repeat(73)),
    value('74 bytes in 37 characters', 'é'.repeat(37)),
    value('72 bytes of emoji', '😀'.repeat(18)),
    value('7 bytes', 'short77'),
  ];
  return [
    value('empty', ''),
    value('whitespace', ' \t '),
    value(`${max} characters`, 'x'.repeat(max)),
    value(`${max + 1} characters`, 'x'.repeat(max + 1)),
    value(`${max} emoji`, '😀'.repeat(max)),
    value(`${max} combining marks`, 'e\u0301'.repeat(Math.floor(max / 2))),
    value('10000 characters', 'x'.repeat(10_000)),
    value('emoji', '💸😀'),
    value('RTL override', '\u202eevil'),
    value('zero-width and BOM', '\u200b\ufeff'),
    value('noncharacter U+FFFF', '\uffff'),
    value('control characters', '\u0001\u001b[31m\u007f'),
    value('newline', 'a\r\nb'),
    value('SQL', "' OR 1=1 --"),
    value('LIKE wildcards', '%_\\'),
    value('template', '${7*7}{{7*7}}'),
    value('markup', '<script>alert(1)</script>'),
    both('text + NUL', '"a\\u0000b"', 'a%00b'),
    both('reversed surrogate pair', '"\\udc00\\ud800"', '%ED%B0%80%ED%A0%80'),
    json('an operator object', '{"$gt":""}'),
    ...(/password/.test(name) ? passwords : []),
    ...(extra[name] ?? []),
    ...UNSTORABLE,
    ...OTHER_TYPES,
  ];
}

const IDEMPOTENCY_KEYS = [
  'k'.repeat(256),
  'k'.repeat(255),
  'k'.repeat(10_000),
  '',
  ' ',
  'é\u00ff',
  '%00',
  '../../etc/passwd',
  'a,b',
  randomUUID().toUpperCase(),
];

type Kind = 'id' | 'instant' | 'cursor' | 'amount' | 'integer' | 'enum' | 'boolean' | 'accountNumber' | 'idempotencyKey' | 'string';

function kindOf(field: Field): Kind {
  const { schema } = field;
  const branches = schema.anyOf ?? [];
  if (field.in === 'header') return 'idempotencyKey';
  if (schema.format === 'uuid') return 'id';
  if (schema.format === 'date' || schema.format === 'date-time') return 'instant';
  if (field.name === 'cursor') return 'cursor';
  if (branches.some((b) => b.type === 'number') && branches.some((b) => b.type === 'string')) return 'amount';
  if (schema.type === 'integer' || schema.type === 'number') return 'integer';
  if (schema.enum || (branches.length > 0 && branches.every((b) => b.enum))) return 'enum';
  if (schema.type === 'boolean') return 'boolean';
  if (schema.pattern === '^[0-9]{10}$') return 'accountNumber';
  return 'string';
}

/** The hostile values for a field; `real` is its valid value, when it has one, for the variants made from it. */
function hostileFor(field: Field, real: unknown): Hostile[] {
  const text = typeof real === 'string' ? real : undefined;
  switch (kindOf(field)) {
    case 'id':
      return ids(text ?? randomUUID());
    case 'instant':
      return instants();
    case 'cursor':
      return cursors();
    case 'amount':
      return amounts();
    case 'integer':
      return integers(field.schema);
    case 'enum':
      return enums(field.schema);
    case 'boolean':
      return booleans();
    case 'accountNumber':
      return accountNumbers(text ?? NOBODY);
    case 'idempotencyKey':
      return [];
    case 'string':
      return strings(field.name, field.schema);
  }
}

// ---------------------------------------------------------------------------------------------------
// Callers, fixtures, and a valid request for every operation
// ---------------------------------------------------------------------------------------------------

type Role = 'admin' | 'auditor' | 'customer' | 'anonymous';

interface Caller {
  role: Role;
  token?: string;
}

/** A value of a valid request; a function (Fresh) is called for each request that uses it (a fresh object). */
type Valid = unknown;
type Fresh = () => Promise<unknown>;

interface Baseline {
  path?: Record<string, Valid>;
  query?: Record<string, Valid>;
  body?: Record<string, Valid>;
  form?: Record<string, Valid>;
  /** A caller of its own for each request (the operation ends or changes the caller's session). */
  caller?: () => Promise<Caller>;
}

const resolve = async (v: Valid): Promise<unknown> => (typeof v === 'function' ? (v as Fresh)() : v);

function expectStatus(response: LightMyRequestResponse, status: number, what: string): void {
  if (response.statusCode !== status) throw new Error(`${what}: ${response.statusCode} ${response.body.slice(0, 300)}`);
}

const PASSWORD = 'probe-password-1';
let users = 0;

/** A new user with a known password, and its first token pair. */
async function newUser(role: Exclude<Role, 'anonymous'>) {
  const email = `probe-${role}-${++users}-${randomUUID().slice(0, 8)}@bank.test`;
  const response = await bank.admin.post('/auth/register', { name: `Probe ${role} ${users}`, email, password: PASSWORD, role });
  expectStatus(response, 201, 'register');
  return { id: response.data.user.id as string, email, token: response.data.access_token as string };
}

async function login(email: string): Promise<{ access_token: string; refresh_token: string }> {
  const response = await bank.anonymous.post('/auth/login', { email, password: PASSWORD });
  expectStatus(response, 200, 'login');
  return response.data;
}

interface Fixtures {
  callers: Record<Exclude<Role, 'anonymous'>, Caller>;
  baselines: Record<string, Baseline>;
}

async function makeFixtures(): Promise<Fixtures> {
  const client = (role: Role, c: Client): Caller => ({ role, token: c.token! });
  const auditor = await bank.user('auditor');
  // Alice probes as the customer; Bob pays her transfers that wait for review or get reversed; Carol
  // is changed by PATCH (renamed, her account's limit set) so no probe can lock Alice out.
  const alice = await bank.customer('1000000.00');
  const bob = await bank.customer('1000000.00');
  const carol = await bank.customer('100.00');
  const loginUser = await newUser('customer');
  const sessionUser = await newUser('customer');

  const transfer = async (amount: string, expected: string) => {
    const response = await bob.post('/transactions/transfer', {
      from_account: bob.account.account_number,
      to_account: alice.account.account_number,
      amount,
    });
    expectStatus(response, 201, 'transfer');
    if (response.data.status !== expected) throw new Error(`transfer: ${response.data.status}, not ${expected}`);
    return response.data.id as string;
  };
  const pendingTransfer = () => transfer('600.00', 'pending_review');
  const completedTransfer = () => transfer('1.00', 'completed');
  const pendingLoan = async () => {
    const response = await alice.post('/loans', { account_id: alice.account.id, principal: '1000.00', term_months: 12 });
    expectStatus(response, 201, 'apply for a loan');
    return response.data.id as string;
  };
  const aliceTransfer = await alice.post('/transactions/transfer', {
    from_account: alice.account.account_number,
    to_account: bob.account.account_number,
    amount: '1.00',
  });
  expectStatus(aliceTransfer, 201, 'transfer');
  const activeLoan = await pendingLoan();
  expectStatus(await bank.admin.post(`/loans/${activeLoan}/approve`, {}), 200, 'approve loan');
  const today = new Date().toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);

  const baselines: Record<string, Baseline> = {
    'GET /health': {},
    'GET /ready': {},
    'GET /metrics': {},
    'POST /auth/login': { body: { email: loginUser.email, password: PASSWORD }, form: { username: loginUser.email, password: PASSWORD } },
    'POST /auth/refresh': { body: { refresh_token: async () => (await login(sessionUser.email)).refresh_token } },
    'POST /auth/logout': { caller: async () => ({ role: 'customer', token: (await login(sessionUser.email)).access_token }) },
    'POST /auth/change-password': {
      caller: async () => ({ role: 'customer', token: (await newUser('customer')).token }),
      body: { current_password: PASSWORD, new_password: PASSWORD },
    },
    'POST /auth/register': {
      body: { name: 'Probe', email: async () => `probe-${randomUUID()}@bank.test`, password: PASSWORD, role: 'customer' },
    },
    'GET /auth/me': {},
    'GET /users': {},
    'GET /users/{id}': { path: { id: alice.user.id } },
    'PATCH /users/{id}': { path: { id: carol.user.id }, body: { name: 'Carol' } },
    'POST /accounts/': { query: { user_id: carol.user.id }, body: { type: 'checking' } },
    'GET /accounts/': {},
    'GET /accounts/{id}': { path: { id: alice.account.id } },
    'PATCH /accounts/{id}': { path: { id: carol.account.id }, body: { daily_limit: '25000.00' } },
    'POST /accounts/{id}/deposit': { path: { id: alice.account.id }, body: { amount: '1.00' } },
    'POST /accounts/{id}/withdraw': { path: { id: alice.account.id }, body: { amount: '1.00' } },
    'POST /transactions/transfer': {
      body: { from_account: alice.account.account_number, to_account: bob.account.account_number, amount: '1.00' },
    },
    'GET /transactions/': {},
    'GET /transactions/flagged': {},
    'GET /transactions/{id}': { path: { id: aliceTransfer.data.id } },
    'POST /transactions/{id}/approve': { path: { id: pendingTransfer }, body: { note: 'probe' } },
    'POST /transactions/{id}/reject': { path: { id: pendingTransfer }, body: { reason: 'probe' } },
    'POST /transactions/{id}/reverse': { path: { id: completedTransfer }, body: { reason: 'probe' } },
    'GET /reports/reconciliation': {},
    'GET /audit-logs': {},
    'GET /audit-logs/verify': {},
    'POST /loans': { body: { account_id: alice.account.id, principal: '1000.00', term_months: 12 } },
    'GET /loans': {},
    'GET /loans/{id}': { path: { id: activeLoan } },
    'POST /loans/{id}/approve': { path: { id: pendingLoan }, body: { note: 'probe' } },
    'POST /loans/{id}/reject': { path: { id: pendingLoan }, body: { reason: 'probe' } },
    'POST /loans/{id}/repay': { path: { id: activeLoan }, body: { amount: '1.00' } },
    'GET /accounts/{id}/statement': { path: { id: alice.account.id }, query: { from: monthAgo, to: today } },
    'GET /accounts/{id}/balance': { path: { id: alice.account.id } },
  };
  return {
    callers: { admin: client('admin', bank.admin), auditor: client('auditor', auditor), customer: client('customer', alice) },
    baselines,
  };
}

// ---------------------------------------------------------------------------------------------------
// Requests: a valid one, and the one change a probe makes to it
// ---------------------------------------------------------------------------------------------------

/** A request in the making: every value already in its wire form (percent-encoded, or JSON text). */
interface Draft {
  caller: Caller;
  path: Record<string, string>;
  query: Array<[string, string]>;
  body: Array<[string, string]>;
  form: Array<[string, string]>;
  headers: Record<string, string>;
  /** Send the form (login's other content type) instead of the JSON body. */
  asForm?: boolean;
  /** The whole payload and its content type, when a probe replaces the body (undefined: no content type). */
  payload?: { data: string | Buffer; type: string | undefined };
}

/** What a probe changes in the valid request; it names the part it replaces, which is then not made. */
interface Change {
  skip?: { in: Where; name: string };
  apply: (draft: Draft) => void | Promise<void>;
}

async function validDraft(baseline: Baseline, caller: Caller, skip?: Change['skip']): Promise<Draft> {
  const entries = async (where: Where, values: Record<string, Valid> | undefined, encode: (v: unknown) => string) => {
    const out: Array<[string, string]> = [];
    for (const [name, v] of Object.entries(values ?? {})) {
      if (skip?.in === where && skip.name === name) continue;
      out.push([name, encode(await resolve(v))]);
    }
    return out;
  };
  const text = (v: unknown) => pct(String(v));
  return {
    caller: baseline.caller ? await baseline.caller() : caller,
    path: Object.fromEntries(await entries('path', baseline.path, text)),
    query: await entries('query', baseline.query, text),
    body: await entries('body', baseline.body, (v) => JSON.stringify(v)),
    form: await entries('form', baseline.form, text),
    headers: {},
  };
}

function toInject(op: Operation, draft: Draft): InjectOptions {
  const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => draft.path[name] ?? '');
  const query = draft.query.map(([k, v]) => `${pct(k)}=${v}`).join('&');
  const headers: Record<string, string> = {
    ...(draft.caller.token ? { authorization: `Bearer ${draft.caller.token}` } : {}),
    ...draft.headers,
  };
  let payload: string | Buffer | undefined;
  if (draft.payload) {
    payload = draft.payload.data;
    if (draft.payload.type !== undefined) headers['content-type'] = draft.payload.type;
  } else if (draft.asForm) {
    payload = draft.form.map(([k, v]) => `${pct(k)}=${v}`).join('&');
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (op.takesBody && op.fields.some((f) => f.in === 'body')) {
    payload = `{${draft.body.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
    headers['content-type'] = 'application/json';
  }
  return {
    method: op.method as InjectOptions['method'],
    url: query ? `${path}?${query}` : path,
    headers,
    ...(payload === undefined ? {} : { payload }),
  };
}

/** Replaces (or adds) one entry of a list of [name, value]; `undefined` leaves it out. */
function put(list: Array<[string, string]>, name: string, v: string | undefined): void {
  const kept = list.filter(([k]) => k !== name);
  list.splice(0, list.length, ...kept, ...(v === undefined ? [] : [[name, v] as [string, string]]));
}

// ---------------------------------------------------------------------------------------------------
// The probes an operation gets
// ---------------------------------------------------------------------------------------------------

interface Probe {
  op: Operation;
  role: Role;
  what: string;
  change: Change;
}

/** One hostile value for one field. */
function fieldProbe(field: Field, hostile: Hostile): Change | undefined {
  const skip = { in: field.in, name: field.name };
  switch (field.in) {
    case 'path':
      return hostile.url === undefined ? undefined : { skip, apply: (d) => void (d.path[field.name] = hostile.url!) };
    case 'query':
      return hostile.url === undefined ? undefined : { skip, apply: (d) => put(d.query, field.name, hostile.url) };
    case 'form':
      return hostile.url === undefined
        ? undefined
        : {
            skip,
            apply: (d) => {
              d.asForm = true;
              put(d.form, field.name, hostile.url);
            },
          };
    case 'body':
      return hostile.json === undefined ? undefined : { skip, apply: (d) => put(d.body, field.name, hostile.json) };
    case 'header':
      return undefined;
  }
}

const DEEP_ARRAY = '['.repeat(20_000) + ']'.repeat(20_000);
const DEEP_OBJECT = '{"a":'.repeat(6_000) + '1' + '}'.repeat(6_000);

/** Whole bodies in place of the valid one; `valid` is the valid body's JSON text. */
function wholeBodies(valid: string, form: string): Array<[string, string | Buffer, string | undefined]> {
  const inner = valid.slice(1, -1);
  const withKey = (key: string) => `{${key}${inner ? `,${inner}` : ''}}`;
  return [
    ['invalid JSON', '{"a":', 'application/json'],
    ['[]', '[]', 'application/json'],
    ['"x"', '"x"', 'application/json'],
    ['null', 'null', 'application/json'],
    ['0', '0', 'application/json'],
    ['empty body', '', 'application/json'],
    ['deeply nested array', DEEP_ARRAY, 'application/json'],
    ['deeply nested object', DEEP_OBJECT, 'application/json'],
    ['a __proto__ key', withKey('"__proto__":{"role":"admin","amount":"1.00"}'), 'application/json'],
    ['a constructor.prototype key', withKey('"constructor":{"prototype":{"role":"admin"}}'), 'application/json'],
    ['an unknown property', withKey('"zzz":1'), 'application/json'],
    ['duplicate keys', `${valid.slice(0, -1)}${inner ? ',' : ''}${inner}}`, 'application/json'],
    [
      'invalid UTF-8 in a string',
      Buffer.concat([Buffer.from('{"zzz":"'), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from('"}')]),
      'application/json',
    ],
    ['UTF-8 BOM', `\ufeff${valid}`, 'application/json'],
    ['charset=utf-16', valid, 'application/json; charset=utf-16'],
    ['charset=bogus', valid, 'application/json; charset=bogus'],
    ['application/vnd.api+json', valid, 'application/vnd.api+json'],
    ['form-encoded valid body', form, 'application/x-www-form-urlencoded'],
    ['form-encoded garbage', 'a=b&a=c&%ZZ=%&__proto__[x]=1&=', 'application/x-www-form-urlencoded'],
    ['text/plain', valid, 'text/plain'],
    ['multipart', `--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n`, 'multipart/form-data; boundary=x'],
    ['no content-type', valid, undefined],
  ];
}

interface ForgedClaims {
  label: string;
  claims: (real: JWTPayload) => Record<string, unknown>;
}

const FORGED: ForgedClaims[] = [
  { label: 'sub not a UUID, unknown jti', claims: (r) => ({ ...r, sub: 'not-a-uuid', jti: randomUUID() }) },
  { label: 'sub not a UUID, real jti', claims: (r) => ({ ...r, sub: 'not-a-uuid' }) },
  { label: 'sub 36 dashes, real jti', claims: (r) => ({ ...r, sub: DASHES }) },
  { label: 'sub 36 hex digits, real jti', claims: (r) => ({ ...r, sub: HEX36 }) },
  { label: 'sub urn:uuid:, real jti', claims: (r) => ({ ...r, sub: `urn:uuid:${r.sub}` }) },
  { label: 'sub uppercase, real jti', claims: (r) => ({ ...r, sub: String(r.sub).toUpperCase() }) },
  { label: 'sub with NUL, real jti', claims: (r) => ({ ...r, sub: `${r.sub}\u0000` }) },
  { label: 'sub empty, real jti', claims: (r) => ({ ...r, sub: '' }) },
  { label: 'sub a number, real jti', claims: (r) => ({ ...r, sub: 12345 }) },
  { label: 'sub nil UUID, real jti', claims: (r) => ({ ...r, sub: NIL }) },
  { label: 'jti uppercase', claims: (r) => ({ ...r, jti: String(r.jti).toUpperCase() }) },
  { label: 'role claims admin', claims: (r) => ({ ...r, role: 'admin' }) },
  { label: 'role claims customer', claims: (r) => ({ ...r, role: 'customer' }) },
  { label: 'role __proto__', claims: (r) => ({ ...r, role: '__proto__' }) },
  { label: 'exp 2^53', claims: (r) => ({ ...r, exp: 2 ** 53 }) },
  { label: 'iat in the far future', claims: (r) => ({ ...r, iat: 2 ** 40 }) },
];

/** Authorization, Idempotency-Key and X-Request-Id headers, the rest of the request valid. */
function headerProbes(op: Operation): Array<[string, Change]> {
  const header = (name: string, make: (d: Draft) => string | Promise<string>): Change => ({
    apply: async (d) => void (d.headers[name] = await make(d)),
  });
  const probes: Array<[string, Change]> = [
    ['Authorization: bearer <valid token> (lowercase scheme)', header('authorization', (d) => `bearer ${d.caller.token ?? 'x.y.z'}`)],
    ['Authorization: Bearer abc', header('authorization', () => 'Bearer abc')],
    ['Authorization: Bearer <token> + space', header('authorization', (d) => `Bearer ${d.caller.token ?? 'x.y.z'} `)],
    ['Authorization: Bearer a.b.c', header('authorization', () => 'Bearer a.b.c')],
    ['Authorization: Basic', header('authorization', () => 'Basic YWRtaW46YWRtaW4=')],
    ['Authorization: Bearer (10000 characters)', header('authorization', () => `Bearer ${'a'.repeat(5000)}.${'b'.repeat(5000)}.c`)],
    ['Idempotency-Key of 256 characters', header('idempotency-key', () => 'k'.repeat(256))],
    ['X-Request-Id of 300 characters', header('x-request-id', () => 'r'.repeat(300))],
    ['X-Request-Id with CR LF', header('x-request-id', () => 'a\r\nx-injected: 1')],
  ];
  const idempotent = op.fields.some((f) => f.in === 'header' && f.name === 'idempotency-key');
  for (const forged of FORGED) {
    const forge = async (d: Draft) => {
      const real = d.caller.token ? decodeJwt(d.caller.token) : { sub: randomUUID(), role: 'customer', jti: randomUUID() };
      const now = Math.floor(Date.now() / 1000);
      return `Bearer ${await sign({ iat: now, exp: now + 600, ...forged.claims(real) })}`;
    };
    probes.push([`forged token: ${forged.label}`, header('authorization', forge)]);
    // The key is stored under the token's subject: the forged subject then reaches that lookup too.
    if (idempotent) {
      probes.push([
        `forged token: ${forged.label}, with an Idempotency-Key`,
        {
          apply: async (d) => {
            d.headers.authorization = await forge(d);
            d.headers['idempotency-key'] = randomUUID();
          },
        },
      ]);
    }
  }
  if (idempotent) {
    for (const key of IDEMPOTENCY_KEYS) {
      probes.push([
        `Idempotency-Key ${JSON.stringify(key.length > 40 ? `${key.slice(0, 10)}…(${key.length})` : key)}`,
        header('idempotency-key', () => key),
      ]);
    }
  }
  return probes;
}

async function probesFor(op: Operation, role: Role, caller: Caller, baseline: Baseline): Promise<Probe[]> {
  const probes: Probe[] = [];
  const add = (what: string, change: Change | undefined) => change && probes.push({ op, role, what, change });
  for (const field of op.fields) {
    const values =
      field.in === 'form' ? baseline.form : field.in === 'query' ? baseline.query : field.in === 'path' ? baseline.path : baseline.body;
    // One valid value, made once, for the variants made from it (its uppercase, say).
    const real = values && field.name in values ? await resolve(values[field.name]) : undefined;
    for (const hostile of hostileFor(field, real)) add(`${field.in} ${field.name} = ${hostile.label}`, fieldProbe(field, hostile));
    if (field.in === 'query') {
      add(`query ${field.name} given twice`, {
        skip: { in: 'query', name: field.name },
        apply: (d) => void d.query.push([field.name, 'a'], [field.name, 'b']),
      });
    }
    if (field.in === 'body' && real !== undefined) {
      add(`body ${field.name} absent`, { skip: { in: 'body', name: field.name }, apply: () => {} });
    }
  }
  add('unknown query parameters', { apply: (d) => void d.query.push(['__proto__', 'x'], ['constructor', 'y'], ['zzz', pct('\u0000')]) });
  add('a thousand unknown query parameters', {
    apply: (d) => void d.query.push(...Array.from({ length: 1000 }, (_, i) => [`p${i}`, 'x'] as [string, string])),
  });
  if (op.takesBody) {
    const draft = await validDraft({ body: baseline.body, form: baseline.form ?? baseline.body }, caller);
    const validBody = `{${draft.body.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
    const form = draft.form.map(([k, v]) => `${pct(k)}=${v}`).join('&');
    for (const [label, data, type] of wholeBodies(validBody, form)) {
      add(`whole body: ${label}`, { apply: (d) => void (d.payload = { data, type }) });
    }
  }
  for (const [label, change] of headerProbes(op)) add(`header ${label}`, change);
  return probes;
}

// ---------------------------------------------------------------------------------------------------
// Sending, and judging every answer
// ---------------------------------------------------------------------------------------------------

interface Failure {
  method: string;
  path: string;
  role: Role;
  what: string;
  sent: string;
  status: number | string;
  body: string;
}

function snippet(text: string | Buffer | undefined, length = 160): string {
  if (text === undefined) return '';
  const s = Buffer.isBuffer(text) ? `<${text.length} bytes>` : text;
  return s.length > length ? `${s.slice(0, length)}…(${s.length})` : s;
}

/** Why an answer breaks the rule, or undefined. An answer to HEAD has no body to read. */
function judge(response: LightMyRequestResponse, method: string): string | undefined {
  if (response.statusCode >= 500) return 'server error';
  if (response.statusCode < 400) return undefined;
  const type = String(response.headers['content-type'] ?? '');
  if (!/^application\/problem\+json/.test(type)) return `content-type ${type || '(none)'}`;
  if (method === 'HEAD') return undefined;
  try {
    const code = (JSON.parse(response.body) as { code?: unknown }).code;
    return typeof code === 'string' ? undefined : 'no code';
  } catch {
    return 'body is not JSON';
  }
}

const dumped: string[] = [];
interface Run {
  sent: number;
  failures: Failure[];
}

async function runAll(probes: Array<{ op: Operation; role: Role; what: string; make: () => Promise<InjectOptions> }>): Promise<Run> {
  const failures: Failure[] = [];
  for (let i = 0; i < probes.length; i += GROUP) {
    await Promise.all(
      probes.slice(i, i + GROUP).map(async ({ op, role, what, make }) => {
        let request: InjectOptions | undefined;
        const fail = (status: number | string, body: string) =>
          failures.push({
            method: op.method,
            path: op.path,
            role,
            what,
            sent: request
              ? `${request.method} ${snippet(typeof request.url === 'string' ? request.url : JSON.stringify(request.url), 200)}${request.payload ? ` ${snippet(request.payload as string | Buffer)}` : ''}`
              : '(not built)',
            status,
            body: snippet(body, 300),
          });
        try {
          request = await make();
          const response = await bank.app.inject(request);
          if (process.env.PROBE_DUMP)
            dumped.push(
              `${response.statusCode}\t${op.method} ${op.path} as ${role}\t${what}\t${snippet(typeof request.url === 'string' ? request.url : JSON.stringify(request.url), 150)}\t${response.body.slice(0, 200).replace(/\s+/g, ' ')}`,
            );
          const why = judge(response, String(request.method));
          if (why) fail(`${response.statusCode} (${why})`, response.body);
        } catch (error) {
          fail('the probe threw', String((error as Error).stack ?? error));
        }
      }),
    );
  }
  if (process.env.PROBE_DUMP) (await import('node:fs')).writeFileSync(process.env.PROBE_DUMP, dumped.join('\n'));
  return { sent: probes.length, failures };
}

function report(failures: Failure[]): string {
  const lines = failures.map((f) => `${f.method} ${f.path} as ${f.role} | ${f.what} | ${f.status} | sent ${f.sent} | got ${f.body}`);
  const byRoute = new Map<string, number>();
  for (const f of failures) byRoute.set(`${f.method} ${f.path} ${f.status}`, (byRoute.get(`${f.method} ${f.path} ${f.status}`) ?? 0) + 1);
  return [
    `${failures.length} answers broke the rule (status < 500; a refusal is problem+json with a code):`,
    ...lines,
    '',
    'By route and status:',
    ...[...byRoute].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `  ${n} × ${k}`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------------

describe('hostile input against every OpenAPI operation', () => {
  let operations: Operation[];
  let fixtures: Fixtures;
  /** The roles each operation is probed as. */
  const rolesOf = new Map<string, Role[]>();

  beforeAll(async () => {
    const doc = await bank.app.inject({ method: 'GET', url: '/openapi.json' });
    expectStatus(doc, 200, 'GET /openapi.json');
    operations = operationsOf(JSON.parse(doc.body) as OpenApi);
    fixtures = await makeFixtures();

    // Who may call each operation, by trying: the access check answers before the body is read, so a
    // text/plain body (415 once past it) changes nothing. A GET is tried for real, with valid ids.
    for (const op of operations) {
      if (op.isPublic) {
        rolesOf.set(op.key, ['anonymous']);
        continue;
      }
      const allowed: Role[] = [];
      for (const role of ['admin', 'auditor', 'customer'] as const) {
        const draft = await validDraft({ path: fixtures.baselines[op.key]?.path ?? {} }, fixtures.callers[role]);
        if (op.method !== 'GET') {
          for (const name of Object.keys(draft.path)) draft.path[name] = randomUUID();
          draft.payload = { data: 'x', type: 'text/plain' };
        }
        const response = await bank.app.inject(toInject(op, draft));
        if (response.statusCode !== 401 && response.statusCode !== 403) allowed.push(role);
      }
      // Reads as each kind of caller that may make them (staff and a customer see different rows);
      // writes once, as the admin where allowed, else as the customer.
      // An operation with callers of its own (logout, change-password) makes them customers.
      const readers = allowed.filter((r) => r !== 'auditor');
      const roles: Role[] = fixtures.baselines[op.key]?.caller
        ? ['customer']
        : op.method === 'GET'
          ? readers.length > 0
            ? readers
            : allowed
          : allowed.includes('admin')
            ? ['admin']
            : allowed.slice(0, 1);
      rolesOf.set(op.key, roles);
    }
  }, 120_000);

  it('knows a valid request for every operation, and each is accepted', async () => {
    expect(operations.length).toBeGreaterThan(30);
    const missing = operations.filter((op) => !fixtures.baselines[op.key]).map((op) => op.key);
    expect(missing, 'operations without a baseline in makeFixtures').toEqual([]);
    const refused: string[] = [];
    for (const op of operations) {
      const roles = rolesOf.get(op.key) ?? [];
      if (roles.length === 0) refused.push(`${op.key}: no role may call it`);
      for (const role of roles) {
        const caller = role === 'anonymous' ? { role } : fixtures.callers[role];
        const response = await bank.app.inject(toInject(op, await validDraft(fixtures.baselines[op.key]!, caller)));
        if (response.statusCode >= 400) refused.push(`${op.key} as ${role}: ${response.statusCode} ${response.body.slice(0, 200)}`);
      }
    }
    expect(refused, refused.join('\n')).toEqual([]);
  }, 60_000);

  it('answers every hostile request below 500, and every refusal as problem+json with a code', async () => {
    const started = Date.now();
    const planned: Array<{ op: Operation; role: Role; what: string; make: () => Promise<InjectOptions> }> = [];
    for (const op of operations) {
      const baseline = fixtures.baselines[op.key] ?? {};
      for (const role of rolesOf.get(op.key) ?? []) {
        const caller: Caller = role === 'anonymous' ? { role } : fixtures.callers[role];
        for (const probe of await probesFor(op, role, caller, baseline)) {
          planned.push({
            op,
            role,
            what: probe.what,
            make: async () => {
              const draft = await validDraft(baseline, caller, probe.change.skip);
              await probe.change.apply(draft);
              return toInject(op, draft);
            },
          });
        }
      }
    }
    planned.push(...extraProbes(operations, fixtures));
    const { sent, failures } = await runAll(planned);
    console.info(
      `probe: ${sent} hostile requests over ${operations.length} operations in ${((Date.now() - started) / 1000).toFixed(1)} s; ${failures.length} failures`,
    );
    expect(failures.length, report(failures)).toBe(0);
  }, 180_000);
});

// ---------------------------------------------------------------------------------------------------
// A few explicit probes the table does not make
// ---------------------------------------------------------------------------------------------------

function extraProbes(
  operations: Operation[],
  fixtures: Fixtures,
): Array<{ op: Operation; role: Role; what: string; make: () => Promise<InjectOptions> }> {
  const out: Array<{ op: Operation; role: Role; what: string; make: () => Promise<InjectOptions> }> = [];
  const find = (key: string) => operations.find((op) => op.key === key);
  const add = (key: string, role: Exclude<Role, 'anonymous'>, what: string, apply: (d: Draft) => void, skip?: Change['skip']) => {
    const op = find(key);
    const baseline = fixtures.baselines[key];
    if (!op || !baseline) return;
    out.push({
      op,
      role,
      what,
      make: async () => {
        const draft = await validDraft(baseline, fixtures.callers[role], skip);
        apply(draft);
        return toInject(op, draft);
      },
    });
  };

  // The statement streams CSV and PDF from the same dates: every hostile date in those renderers too.
  for (const format of ['csv', 'pdf']) {
    for (const hostile of instants().filter((h) => h.url !== undefined)) {
      for (const name of ['from', 'to']) {
        add('GET /accounts/{id}/statement', 'customer', `query ${name} = ${hostile.label}, format=${format}`, (d) => {
          put(d.query, name, hostile.url);
          put(d.query, 'format', format);
        });
      }
    }
    add('GET /accounts/{id}/statement', 'admin', `from after to, format=${format}`, (d) => {
      put(d.query, 'from', '2026-03-01');
      put(d.query, 'to', '2026-01-01');
      put(d.query, 'format', format);
    });
    add('GET /accounts/{id}/statement', 'admin', `ten years, format=${format}`, (d) => {
      put(d.query, 'from', '2016-01-01');
      put(d.query, 'to', '2026-01-01');
      put(d.query, 'format', format);
    });
  }
  // A one-day period at the edges of the calendar, in every format.
  for (const day of ['0001-01-01', '1970-01-01', '9999-12-31', '+275760-09-13', '-271821-04-20']) {
    for (const format of ['json', 'csv', 'pdf']) {
      add('GET /accounts/{id}/statement', 'customer', `from = to = ${day}, format=${format}`, (d) => {
        put(d.query, 'from', pct(day));
        put(d.query, 'to', pct(day));
        put(d.query, 'format', format);
      });
    }
    for (const key of ['GET /transactions/', 'GET /audit-logs']) {
      add(key, 'admin', `from = to = ${day}`, (d) => {
        put(d.query, 'from', pct(day));
        put(d.query, 'to', pct(day));
      });
    }
  }
  // Each bound of the date range alone, the other left to its default.
  for (const name of ['from', 'to']) {
    for (const v of ['0001-01-01', '9999-12-31', '-271821-04-20', '+275760-09-13']) {
      add('GET /accounts/{id}/statement', 'customer', `query ${name} = ${v} alone`, (d) => put(d.query, name, pct(v)), {
        in: 'query',
        name: name === 'from' ? 'to' : 'from',
      });
    }
  }
  for (const key of ['GET /transactions/', 'GET /audit-logs']) {
    add(key, 'admin', 'from after to', (d) => {
      put(d.query, 'from', '2026-03-01');
      put(d.query, 'to', '2026-01-01');
    });
    add(key, 'admin', 'from 0001-01-01, to 9999-12-31', (d) => {
      put(d.query, 'from', '0001-01-01');
      put(d.query, 'to', '9999-12-31');
    });
  }
  // The same Idempotency-Key with two different bodies, and with the same body twice.
  for (const key of ['POST /transactions/transfer', 'POST /accounts/{id}/deposit', 'POST /loans/{id}/repay']) {
    const role = key === 'POST /accounts/{id}/deposit' ? 'admin' : 'customer';
    const idempotencyKey = `probe-${randomUUID()}`;
    for (const amount of ['"1.00"', '"2.00"', '"2.00"']) {
      add(key, role, `Idempotency-Key reused, amount ${amount}`, (d) => {
        d.headers['idempotency-key'] = idempotencyKey;
        put(d.body, 'amount', amount);
      });
    }
  }
  // Loans at the edges of the amounts and terms: approved (the schedule computed), then repaid.
  const asCaller = (role: 'admin' | 'customer', path: string, body: unknown) => ({
    method: 'POST' as const,
    url: path,
    headers: { authorization: `Bearer ${fixtures.callers[role].token}`, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
  const loanOf = async (principal: string, termMonths: number, approve: boolean) => {
    const account = fixtures.baselines['POST /loans']?.body?.account_id;
    const applied = await bank.app.inject(asCaller('customer', '/loans', { account_id: account, principal, term_months: termMonths }));
    expectStatus(applied, 201, 'apply for a loan');
    const id = applied.json().id as string;
    if (approve) expectStatus(await bank.app.inject(asCaller('admin', `/loans/${id}/approve`, {})), 200, 'approve a loan');
    return id;
  };
  const loans = (key: string, role: Role, what: string, make: () => Promise<InjectOptions>) => {
    const op = find(key);
    if (op) out.push({ op, role, what, make });
  };
  for (const [principal, term] of [
    ['999999999999.99', 360],
    ['999999999999.99', 1],
    ['3.60', 360],
    ['0.01', 1],
    ['1.00', 12],
  ] as const) {
    loans('POST /loans/{id}/approve', 'admin', `approve a loan of ${principal} over ${term} months`, async () =>
      asCaller('admin', `/loans/${await loanOf(principal, term, false)}/approve`, {}),
    );
    for (const amount of ['0.01', principal, '999999999999.99']) {
      loans('POST /loans/{id}/repay', 'customer', `repay ${amount} on an approved loan of ${principal} over ${term} months`, async () =>
        asCaller('customer', `/loans/${await loanOf(principal, term, true)}/repay`, { amount }),
      );
    }
  }
  loans('POST /loans/{id}/repay', 'customer', 'repay a loan still pending', async () =>
    asCaller('customer', `/loans/${await loanOf('100.00', 12, false)}/repay`, { amount: '1.00' }),
  );
  // A transfer to the sender's own account.
  add('POST /transactions/transfer', 'customer', 'to_account = from_account', (d) => {
    put(d.body, 'to_account', d.body.find(([k]) => k === 'from_account')![1]);
  });
  // Methods the document does not name, on each path with an id.
  const paths = new Map(operations.filter((o) => o.path.includes('{id}')).map((o) => [o.path, o]));
  for (const op of paths.values()) {
    for (const method of ['DELETE', 'PUT', 'HEAD', 'OPTIONS'] as const) {
      const role = 'admin';
      out.push({
        op: { ...op, method },
        role,
        what: `${method} ${op.path} with id 36 dashes`,
        make: async () => ({
          method,
          url: op.path.replace('{id}', DASHES),
          headers: { authorization: `Bearer ${fixtures.callers[role].token}` },
        }),
      });
    }
  }
  return out;
}
