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

export class InvalidTokenError extends Error {}

const ROLES: readonly string[] = ['customer', 'admin', 'auditor'];

export class TokenService {
  // A KeyObject, not the secret's bytes: jose imports a WebCrypto key from bytes on every call, and
  // once per KeyObject otherwise.
  readonly #key: KeyObject;

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

  /** Verifies signature, expiry and claims. RFC 8725 §3.1: the algorithm is pinned, so `none` and any other are refused. */
  async verifyAccessToken(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: [this.algorithm],
        requiredClaims: ['sub', 'role', 'iat', 'exp', 'jti'],
        typ: 'JWT',
      });
      if (typeof payload.role !== 'string' || !ROLES.includes(payload.role)) throw new InvalidTokenError('unknown role');
      return payload as unknown as AccessClaims;
    } catch (error) {
      if (error instanceof InvalidTokenError || error instanceof joseErrors.JOSEError) throw new InvalidTokenError((error as Error).message);
      throw error;
    }
  }
}
