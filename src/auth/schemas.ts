import { Type } from '@sinclair/typebox';
import { Timestamp, Uuid } from '../http/schemas.js';

export const User = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    email: Type.String({ format: 'email' }),
    role: Type.Union([Type.Literal('customer'), Type.Literal('admin'), Type.Literal('auditor')]),
    is_active: Type.Boolean(),
    created_at: Timestamp,
  },
  { $id: 'User' },
);

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
    role: Type.Optional(Type.Union([Type.Literal('customer'), Type.Literal('admin'), Type.Literal('auditor')], { default: 'customer' })),
  },
  { additionalProperties: false },
);

const tokenFields = {
  access_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  user: Type.Ref(User),
};

export const TokenResponse = Type.Object(tokenFields);
