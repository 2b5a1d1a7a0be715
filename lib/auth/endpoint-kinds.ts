/**
 * The one home of endpoint kind names: what an endpoint serves. The proto enum (`EndpointKind`)
 * on the wire, the strings 'chat' / 'embeddings' everywhere else (database rows, the CLI, error
 * messages). A `chat` endpoint serves text generation (chat completions and legacy completions);
 * an `embeddings` endpoint serves embeddings. Unspecified (an endpoint created before kinds
 * existed, or a caller that names none) reads as chat.
 */
import { EndpointKind } from '../../gen/xerotier/auth/v1/auth_service.js';

export const ENDPOINT_KIND_NAMES = ['chat', 'embeddings'] as const;
export type EndpointKindName = (typeof ENDPOINT_KIND_NAMES)[number];

const byName: Readonly<Record<EndpointKindName, EndpointKind>> = {
  chat: EndpointKind.ENDPOINT_KIND_CHAT,
  embeddings: EndpointKind.ENDPOINT_KIND_EMBEDDINGS,
};

/** The name of a proto kind; unspecified is chat, an unknown value undefined. */
export function endpointKindName(kind: EndpointKind): EndpointKindName | undefined {
  switch (kind) {
    case EndpointKind.ENDPOINT_KIND_UNSPECIFIED:
    case EndpointKind.ENDPOINT_KIND_CHAT:
      return 'chat';
    case EndpointKind.ENDPOINT_KIND_EMBEDDINGS:
      return 'embeddings';
    case EndpointKind.UNRECOGNIZED:
      return undefined;
  }
}

export function endpointKindValue(name: EndpointKindName): EndpointKind {
  return byName[name];
}

export function isEndpointKindName(value: string): value is EndpointKindName {
  return (ENDPOINT_KIND_NAMES as readonly string[]).includes(value);
}
