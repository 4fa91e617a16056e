import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { JwtAlgorithm } from '../config.js';
import type { Role } from '../db/schema.js';

export interface AccessClaims {
  sub: string;
  role: Role;
  jti: string;
  iat: number;
  exp: number;
}

export interface IssuedToken {
  token: string;
  jti: string;
  expiresIn: number;
}

/** A token refused; its message is for the client (the answer stays 401 unauthorized). */
export class InvalidTokenError extends Error {}

const ROLES: readonly string[] = ['customer', 'admin', 'auditor'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EXPIRED = 'The access token has expired';
const MALFORMED = 'The access token is malformed';

/** What a client hears of a token that jose refused. */
function refusalOf(error: InstanceType<typeof joseErrors.JOSEError>): string {
  if (error instanceof joseErrors.JWTExpired) return EXPIRED;
  if (
    error instanceof joseErrors.JWSInvalid ||
    error instanceof joseErrors.JWTInvalid ||
    error instanceof joseErrors.JWTClaimValidationFailed
  )
    return MALFORMED;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'The access token is signed with an algorithm this service does not accept';
  return 'The access token is not valid';
}

/** Verified tokens kept at most; about 1 KB each. */
const VERIFIED_TOKENS_KEPT = 10_000;

export class TokenService {
  // A KeyObject, not the secret's bytes: jose imports a WebCrypto key from bytes on every call, and
  // once per KeyObject otherwise.
  readonly #key: KeyObject;
  /**
   * Access tokens already verified, with their claims. A client sends the same token with every request
   * until it expires, and jose's HMAC goes through WebCrypto, whose job costs the event loop about 0.1 ms
   * a request under load (BENCHMARKS.md); a lookup costs nothing. Keyed by the whole token, so a hit is
   * a string that passed jwtVerify with this key and algorithm; expiry is checked again on every hit,
   * and revocation is not decided here but by the session lookup that follows. The oldest entry goes
   * first when full: a token that falls out is verified again.
   */
  readonly #verified = new Map<string, AccessClaims>();

  constructor(
    secret: string,
    readonly algorithm: JwtAlgorithm,
    readonly lifetimeSeconds: number,
  ) {
    this.#key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  async issueAccessToken(userId: string, role: Role): Promise<IssuedToken> {
    const jti = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ role })
      .setProtectedHeader({ alg: this.algorithm, typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt(now)
      .setExpirationTime(now + this.lifetimeSeconds)
      .setJti(jti)
      .sign(this.#key);
    return { token, jti, expiresIn: this.lifetimeSeconds };
  }

  /**
   * Verifies signature, expiry and claims. RFC 8725 §3.1: the algorithm is pinned, so `none` and any
   * other are refused. Every claim's type is checked here, once, so that a token signed with the right
   * key but carrying a `sub` that is not a UUID is refused as malformed on every route, before any
   * query casts it.
   */
  async verifyAccessToken(token: string): Promise<AccessClaims> {
    const known = this.#verified.get(token);
    if (known) {
      // jose's rule: expired once exp <= now, in whole seconds.
      if (known.exp > Math.floor(Date.now() / 1000)) return known;
      this.#verified.delete(token);
      throw new InvalidTokenError(EXPIRED);
    }
    const claims = Object.freeze(await this.#verify(token));
    // Our tokens carry no "nbf"; one that does (signed with the secret elsewhere) is verified each time.
    if ('nbf' in claims) return claims;
    if (this.#verified.size >= VERIFIED_TOKENS_KEPT) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, claims);
    return claims;
  }

  async #verify(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: [this.algorithm],
        requiredClaims: ['sub', 'role', 'iat', 'exp', 'jti'],
        typ: 'JWT',
      });
      const { sub, jti, role } = payload;
      const wellFormed =
        typeof sub === 'string' &&
        UUID.test(sub) &&
        typeof jti === 'string' &&
        UUID.test(jti) &&
        typeof role === 'string' &&
        ROLES.includes(role);
      if (!wellFormed) throw new InvalidTokenError(MALFORMED);
      return payload as unknown as AccessClaims;
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) throw new InvalidTokenError(refusalOf(error));
      throw error;
    }
  }
}
