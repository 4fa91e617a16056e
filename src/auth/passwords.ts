import bcrypt from 'bcrypt';

export const PASSWORD_MIN_BYTES = 8;
// bcrypt reads at most 72 bytes; anything longer would be silently truncated, so it is refused.
export const PASSWORD_MAX_BYTES = 72;

export function passwordProblem(password: string): string | undefined {
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes < PASSWORD_MIN_BYTES || bytes > PASSWORD_MAX_BYTES) {
    return `must be ${PASSWORD_MIN_BYTES} to ${PASSWORD_MAX_BYTES} bytes long (bcrypt's limit)`;
  }
  return undefined;
}

export class PasswordHasher {
  // A real hash of a random password at the same cost: unknown emails are compared against it so that
  // they take as long to refuse as a wrong password.
  readonly #dummyHash: Promise<string>;

  constructor(readonly cost: number) {
    this.#dummyHash = bcrypt.hash(`dummy-${Math.random()}`, cost);
  }

  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.cost);
  }

  /** Compares in constant work whether or not there is a stored hash. */
  async verify(password: string, storedHash: string | undefined): Promise<boolean> {
    const tooLong = Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES;
    const matches = await bcrypt.compare(password, storedHash ?? (await this.#dummyHash));
    return matches && storedHash !== undefined && !tooLong;
  }
}
