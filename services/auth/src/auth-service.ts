/**
 * AuthService: Authenticate plus the admin RPCs. All policy lives in the service, the store only
 * persists. Every method is a plain async function of the request, so the same object is the
 * nice-grpc implementation, the seed's API and the unit tests' subject. One file per concept:
 * authenticate.ts (key → principal), project-admin.ts (projects, endpoints), key-admin.ts (API
 * keys) with key-reach.ts (what an actor key may manage), messages.ts (rows → proto messages).
 */
import type { Logger } from 'pino';
import type {
  AuthenticateRequest,
  AuthenticateResponse,
  CreateApiKeyRequest,
  CreateApiKeyResponse,
  CreateEndpointRequest,
  CreateEndpointResponse,
  CreateProjectRequest,
  CreateProjectResponse,
  GetApiKeyRequest,
  GetApiKeyResponse,
  ListApiKeysRequest,
  ListApiKeysResponse,
  ListEndpointsRequest,
  ListEndpointsResponse,
  ListProjectsRequest,
  ListProjectsResponse,
  RevokeApiKeyRequest,
  RevokeApiKeyResponse,
  RotateApiKeyRequest,
  RotateApiKeyResponse,
  SetEndpointActiveRequest,
  SetEndpointActiveResponse,
  SetEndpointModelRequest,
  SetEndpointModelResponse,
} from '../../../gen/xerotier/auth/v1/auth_service.js';
import type { TierTable } from '../../../lib/tiers/tier-table.js';
import { createAuthenticate } from './authenticate.js';
import { createKeyAdmin } from './key-admin.js';
import { createProjectAdmin } from './project-admin.js';
import type { AuthStore } from './stores/store.js';

export interface AuthServiceOptions {
  store: AuthStore;
  /** HMAC pepper for key hashes. */
  pepper: string;
  tiers: TierTable;
  /** Default grace period of rotated keys (seconds). */
  rotationGraceSeconds: number;
  logger: Logger;
  /** Clock in epoch ms (tests inject one). */
  now?: (() => number) | undefined;
}

/** Per-call context; nice-grpc passes its CallContext, which carries our logger. */
export interface CallCtx {
  logger?: Logger | undefined;
}

export interface AuthService {
  authenticate(request: AuthenticateRequest, context?: CallCtx): Promise<AuthenticateResponse>;
  createProject(request: CreateProjectRequest, context?: CallCtx): Promise<CreateProjectResponse>;
  listProjects(request: ListProjectsRequest, context?: CallCtx): Promise<ListProjectsResponse>;
  createEndpoint(request: CreateEndpointRequest, context?: CallCtx): Promise<CreateEndpointResponse>;
  listEndpoints(request: ListEndpointsRequest, context?: CallCtx): Promise<ListEndpointsResponse>;
  setEndpointActive(request: SetEndpointActiveRequest, context?: CallCtx): Promise<SetEndpointActiveResponse>;
  setEndpointModel(request: SetEndpointModelRequest, context?: CallCtx): Promise<SetEndpointModelResponse>;
  createApiKey(request: CreateApiKeyRequest, context?: CallCtx): Promise<CreateApiKeyResponse>;
  listApiKeys(request: ListApiKeysRequest, context?: CallCtx): Promise<ListApiKeysResponse>;
  getApiKey(request: GetApiKeyRequest, context?: CallCtx): Promise<GetApiKeyResponse>;
  revokeApiKey(request: RevokeApiKeyRequest, context?: CallCtx): Promise<RevokeApiKeyResponse>;
  rotateApiKey(request: RotateApiKeyRequest, context?: CallCtx): Promise<RotateApiKeyResponse>;
}

export function createAuthService(options: AuthServiceOptions): AuthService {
  return {
    ...createAuthenticate(options),
    ...createProjectAdmin(options),
    ...createKeyAdmin(options),
  };
}
