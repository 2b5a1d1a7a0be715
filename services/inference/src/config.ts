/** Inference worker configuration: parsed once from the environment (README "Configuration"). */
import { z } from 'zod';
import { bool, logLevel, parseEnv, port } from '../../../lib/config/env.js';
import { grpcTlsEnv } from '../../../lib/grpc/tls.js';
import { MODEL_ID } from './model-id.js';

export const HARDWARE_CLASSES = ['cpu', 'cpu-amd', 'cpu-intel', 'gpu-nvidia', 'gpu-amd', 'gpu-intel', 'self-hosted'] as const;
export type HardwareClassName = (typeof HARDWARE_CLASSES)[number];

const schema = z.object({
  INFERENCE_HOST: z.string().default('127.0.0.1'),
  INFERENCE_PORT: port(50061),
  /** Prometheus `GET /metrics` on INFERENCE_HOST:<port>; unset = no metrics server. */
  INFERENCE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  INFERENCE_WORKER_ID: z.string().optional(),
  /**
   * Fleet registry to join (host:port; it is hosted by the auth service), or `off` (the worker is
   * then only reachable through a gateway's static INFERENCE_WORKERS list).
   */
  INFERENCE_REGISTRY_ADDRESS: z.string().default('127.0.0.1:50051'),
  /**
   * Self-hosted mode: a join key (`xjk_…`) and the platform's gRPC front door (the gateway's
   * GATEWAY_GRPC_PORT). The worker enrolls, then dials out; it listens on no port and joins no registry.
   */
  INFERENCE_JOIN_KEY: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
  INFERENCE_PLATFORM_ADDRESS: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^[A-Za-z0-9.[\]:-]+:\d{1,5}$/, 'must be host:port').optional()),
  /** host:port gateways dial; default INFERENCE_HOST:port (this machine's name when listening on all interfaces). */
  INFERENCE_ADVERTISE_ADDRESS: z.string().optional(),
  ...grpcTlsEnv,
  INFERENCE_HARDWARE_CLASS: z.enum(HARDWARE_CLASSES).default('cpu'),
  /** Serve a declared GPU class even if no such GPU is detected (tests, upstream engines). */
  INFERENCE_ALLOW_HARDWARE_MISMATCH: bool(false),
  INFERENCE_ENGINE: z.enum(['llama-cpp', 'openai', 'simulator']).default('simulator'),
  /**
   * Platform model id the worker advertises (what endpoints name; model-id.ts). Unset = derived
   * from the loaded model (llama-cpp: `SmolLM2-135M-Instruct-Q8_0.gguf` → `smollm2-135m-instruct`).
   */
  INFERENCE_MODEL_ID: z.string().regex(MODEL_ID, 'letters, digits and ._:/@+-, at most 200').optional(),
  INFERENCE_CAPACITY: z.coerce.number().int().positive().default(4),
  INFERENCE_QUEUE_CAPACITY: z.coerce.number().int().min(0).default(8),
  INFERENCE_DRAIN_GRACE_MS: z.coerce.number().int().min(0).default(25_000),
  // llama-cpp engine
  LLAMA_MODEL: z.string().default('hf:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf'),
  LLAMA_MODELS_DIR: z.string().default('.data/models'),
  LLAMA_ALLOW_DOWNLOAD: bool(true),
  /** When the model cannot be had (no network, no cache), serve the generated tiny model. Off by
   * default: a production worker never silently serves the test model (`npm start` turns it on). */
  LLAMA_FALLBACK_TINY: bool(false),
  LLAMA_GPU: z.enum(['auto', 'cuda', 'vulkan', 'metal', 'cpu']).default('auto'),
  LLAMA_THREADS: z.coerce.number().int().positive().optional(),
  LLAMA_CONTEXT_SIZE: z.coerce.number().int().positive().optional(),
  LLAMA_MODEL_NAME: z.string().optional(),
  // openai engine
  OPENAI_UPSTREAM_URL: z.string().url().default('http://127.0.0.1:8000/v1'),
  OPENAI_UPSTREAM_API_KEY: z.string().optional(),
  OPENAI_UPSTREAM_MODEL: z.string().optional(),
  OPENAI_UPSTREAM_CONTEXT_WINDOW: z.coerce.number().int().positive().default(8192),
  // simulator engine
  SIM_TOKENS_PER_SECOND: z.coerce.number().min(0).default(50),
  SIM_TTFT_MS: z.coerce.number().min(0).default(20),
  SIM_RESPONSE_TOKENS: z.coerce.number().int().positive().default(24),
  SIM_CONTEXT_WINDOW: z.coerce.number().int().positive().default(4096),
  SIM_FAIL_AFTER_TOKENS: z.coerce.number().int().min(0).default(0),
  SIM_HANG_AFTER_TOKENS: z.coerce.number().int().min(0).default(0),
  SIM_CRASH_AFTER_TOKENS: z.coerce.number().int().min(0).default(0),
  // simulator performance model (lib/simulator/performance-model.ts): for load and routing tests
  SIM_SPEED_FACTOR: z.coerce.number().positive().default(1),
  SIM_PREFILL_MS_PER_1K_TOKENS: z.coerce.number().min(0).default(0),
  SIM_PREFIX_CACHE_BLOCKS: z.coerce.number().int().min(0).default(0),
  SIM_PREFIX_BLOCK_CHARS: z.coerce.number().int().positive().default(512),
  SIM_DEGRADE_FACTOR: z.coerce.number().min(1).default(1),
  SIM_DEGRADE_AFTER_MS: z.coerce.number().int().min(0).default(0),
  SIM_DEGRADE_AFTER_REQUESTS: z.coerce.number().int().min(0).default(0),
  SIM_DEGRADE_FOR_MS: z.coerce.number().int().min(0).default(0),
  /** Epoch ms SIM_DEGRADE_AFTER_MS counts from (a benchmark aligns several workers); unset = engine start. */
  SIM_CLOCK_ORIGIN_MS: z.coerce.number().int().min(0).optional(),
  SERVICE_TOKEN: z.string().optional(),
  LOG_LEVEL: logLevel,
}).refine((c) => (c.INFERENCE_JOIN_KEY === undefined) === (c.INFERENCE_PLATFORM_ADDRESS === undefined), {
  message: 'INFERENCE_JOIN_KEY and INFERENCE_PLATFORM_ADDRESS go together (self-hosted mode)',
  path: ['INFERENCE_PLATFORM_ADDRESS'],
});

export type InferenceConfig = z.infer<typeof schema>;

export function loadInferenceConfig(env: NodeJS.ProcessEnv): InferenceConfig {
  return parseEnv(schema, env);
}
