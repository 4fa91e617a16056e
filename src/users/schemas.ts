import { Type } from '@sinclair/typebox';
import { PageQuery, pageOf } from '../http/pagination.js';
import { Timestamp, Uuid } from '../http/schemas.js';

export const RoleSchema = Type.Union([Type.Literal('customer'), Type.Literal('admin'), Type.Literal('auditor')]);

export const User = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    email: Type.String({ format: 'email' }),
    role: RoleSchema,
    is_active: Type.Boolean(),
    created_at: Timestamp,
  },
  { $id: 'User' },
);

export const ListUsersQuery = Type.Object({ role: Type.Optional(RoleSchema), ...PageQuery }, { additionalProperties: false });

export const UpdateUserBody = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), is_active: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);

export const UserPage = pageOf(Type.Ref(User));
