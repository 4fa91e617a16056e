import { Type } from '@sinclair/typebox';
import { RoleSchema, User } from '../users/schemas.js';

const Email = Type.String({ format: 'email', maxLength: 254 });
// Byte limits (8 to 72, bcrypt's) are checked in the service; characters here only bound the input.
const Password = Type.String({ minLength: 1, maxLength: 200, description: '8 to 72 bytes (UTF-8)' });

export const JsonLogin = Type.Object({ email: Email, password: Password }, { additionalProperties: false });

/** RFC 6749 §4.3 as Swagger UI's Authorize sends it: the extra fields are accepted and ignored. */
export const FormLogin = Type.Object(
  {
    username: Email,
    password: Password,
    grant_type: Type.Optional(Type.Literal('password')),
    scope: Type.Optional(Type.String({ maxLength: 1000 })),
    client_id: Type.Optional(Type.String({ maxLength: 200 })),
    client_secret: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const RegisterBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    email: Email,
    password: Password,
    role: Type.Optional({ ...RoleSchema, default: 'customer' }),
  },
  { additionalProperties: false },
);

export const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  refresh_token: Type.Optional(Type.String({ description: 'Single-use; exchange it at /auth/refresh for a new pair' })),
  user: Type.Ref(User),
});

export const RefreshBody = Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });

export const ChangePasswordBody = Type.Object({ current_password: Password, new_password: Password }, { additionalProperties: false });
