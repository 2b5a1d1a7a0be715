/**
 * Chat roles in both directions: the OpenAI string a client sends ↔ the proto enum on the gRPC
 * hop between the gateway and the inference workers.
 */
import { Role } from '../../gen/xerotier/inference/v1/inference_service.js';

/** Every role a client may send, in OpenAI's spelling. `developer` is OpenAI's newer `system`. */
export const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool'] as const;
export type ChatRole = (typeof CHAT_ROLES)[number];

export const roleToProto: Readonly<Record<ChatRole, Role>> = {
  system: Role.ROLE_SYSTEM,
  developer: Role.ROLE_DEVELOPER,
  user: Role.ROLE_USER,
  assistant: Role.ROLE_ASSISTANT,
  tool: Role.ROLE_TOOL,
};

const fromProto = new Map<Role, ChatRole>(CHAT_ROLES.map((role) => [roleToProto[role], role]));

/** The OpenAI role of a proto role; undefined for ROLE_UNSPECIFIED and unknown values. */
export function roleFromProto(role: Role): ChatRole | undefined {
  return fromProto.get(role);
}
