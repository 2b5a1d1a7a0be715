/**
 * docker-compose.yml and docker/Dockerfile, checked without Docker (the stack itself is built,
 * started and broken by `npm run test:compose`, test/compose/compose.suite.ts): the Compose file validates against the vendored Compose-spec schema, every variable set
 * for one of our processes is accepted by that process's config schema, every build target and
 * entry file exists, every dependency has a health check, every named volume is declared, and the
 * addresses the services give each other line up.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { loadGatewayConfig } from '../../gateway/src/config.js';
import { loadAuthConfig } from '../../services/auth/src/config.js';
import { loadQuotaConfig } from '../../services/quota/src/config.js';
import { loadInferenceConfig } from '../../services/inference/src/config.js';
import { loadLedgerConfig } from '../../services/ledger/src/config.js';
import { LedgerServiceDefinition } from '../../gen/xerotier/ledger/v1/ledger_service.js';
import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';
import { QuotaServiceDefinition } from '../../gen/xerotier/quota/v1/quota_service.js';
import { InferenceServiceDefinition } from '../../gen/xerotier/inference/v1/inference_service.js';
import { loadTierTable } from '../../lib/tiers/tier-table.js';
import {
  interpolate,
  interpolateString,
  isDockerIgnored,
  parseDockerfile,
  parseDotenv,
  resolveFrom,
  stageCmd,
  type VariableRef,
} from './compose-support.js';

const root = path.join(import.meta.dirname, '..', '..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');

// ── the documents under test ─────────────────────────────────────────────────────────────────

type Env = Record<string, string | number | boolean | null>;
interface Service {
  image?: string;
  read_only?: boolean;
  tmpfs?: string[];
  build?: { context: string; dockerfile: string; target: string; args?: Record<string, string> };
  command?: string[];
  entrypoint?: string[];
  environment?: Env;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  volumes?: string[];
  networks?: string[];
  profiles?: string[];
  restart?: string;
  logging?: unknown;
  devices?: string[];
  ports?: string[];
  deploy?: {
    resources?: {
      limits?: { memory?: string };
      reservations?: { devices?: Array<{ driver?: string; capabilities?: string[] }> };
    };
  };
}
interface ComposeFile {
  name?: string;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, unknown>;
  'x-logging'?: unknown;
}

const envExample = parseDotenv(read('.env.example'));
const rawCompose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const refs: VariableRef[] = [];
/** The file as Compose sees it with .env = .env.example. */
const compose = interpolate(rawCompose, envExample, refs);
const services = Object.entries(compose.services);

const dockerfile = parseDockerfile(read('docker/Dockerfile'));
const stageByName = new Map(dockerfile.stages.flatMap((s) => (s.name ? [[s.name, s] as const] : [])));

/** Our processes: entry file → config loader (a new process must be added here). */
const loaders: Record<string, (env: NodeJS.ProcessEnv) => object> = {
  'gateway/src/main.ts': loadGatewayConfig,
  'services/auth/src/main.ts': loadAuthConfig,
  'services/quota/src/main.ts': loadQuotaConfig,
  'services/inference/src/main.ts': loadInferenceConfig,
  'services/ledger/src/main.ts': loadLedgerConfig,
};

/** The services built from our Dockerfile. */
const ours = services.filter(([, s]) => s.build !== undefined);

function entryOf(service: Service): string {
  const target = service.build?.target;
  const stage = target === undefined ? undefined : stageByName.get(target);
  assert.ok(stage, `build target ${String(target)} is a Dockerfile stage`);
  const cmd = service.command ?? stageCmd(stage);
  assert.ok(cmd, `target ${String(target)} has a CMD`);
  assert.equal(cmd[0], 'node');
  const file = cmd[1];
  assert.ok(file && /^dist\/.+\.js$/.test(file), `CMD runs a file under dist/: ${JSON.stringify(cmd)}`);
  return file.replace(/^dist\//, '').replace(/\.js$/, '.ts');
}

function envOf(service: Service): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Names a volume entry refers to ('name:/path[:mode]'), or undefined for bind mounts. */
function namedVolume(entry: string): string | undefined {
  const source = entry.split(':')[0] ?? '';
  return source === '' || source.startsWith('.') || source.startsWith('/') || source.startsWith('~') ? undefined : source;
}

function hostPort(address: string): { host: string; port: string } {
  const m = /^([^:]+):(\d+)$/.exec(address);
  assert.ok(m?.[1] && m[2], `${address} is host:port`);
  return { host: m[1], port: m[2] };
}

/** The port a service of ours listens on, from its own config variable. */
function listenPort(service: Service): string {
  const env = envOf(service);
  const port = env['GATEWAY_PORT'] ?? env['AUTH_PORT'] ?? env['QUOTA_PORT'] ?? env['INFERENCE_PORT'] ?? env['LEDGER_PORT'];
  assert.ok(port, 'listen port is set explicitly');
  return port;
}

// ── tests ────────────────────────────────────────────────────────────────────────────────────

describe('compose-support helpers', () => {
  it('interpolates like Compose', () => {
    const env = new Map([
      ['SET', 'v'],
      ['EMPTY', ''],
    ]);
    assert.equal(interpolateString('a${SET}b$SET', env), 'avbv');
    assert.equal(interpolateString('${MISSING:-d} ${EMPTY:-d} ${EMPTY-d} ${MISSING-d}', env), 'd d  d');
    assert.equal(interpolateString('$${NOT_A_VAR} $$HOME', env), '${NOT_A_VAR} $HOME');
    assert.equal(interpolateString('${SET:+alt}${EMPTY:+alt}${EMPTY+alt}', env), 'altalt');
    assert.equal(interpolateString('${SET:?err}', env), 'v');
    assert.throws(() => interpolateString('${EMPTY:?must be set}', env), /EMPTY is missing: must be set/);
    assert.throws(() => interpolateString('${MISSING?must be set}', env), /MISSING/);
    assert.throws(() => interpolateString('${A:-${B}}', env), /nested/);
  });

  it('reads .env files, Dockerfiles and .dockerignore rules', () => {
    assert.deepEqual([...parseDotenv('# c\nA=1\nB="two words"\n\nC=\n')], [['A', '1'], ['B', 'two words'], ['C', '']]);
    const df = parseDockerfile('ARG IMG=node:20\nFROM ${IMG} AS one\nRUN a \\\n  && b\n# x\nCMD ["node", "x.js"]\nFROM one\n');
    assert.equal(df.globalArgs.get('IMG'), 'node:20');
    assert.equal(df.stages[0]?.name, 'one');
    assert.equal(resolveFrom(df.stages[0]?.from ?? '', df.globalArgs), 'node:20');
    assert.deepEqual(df.stages[0]?.instructions[0], { keyword: 'RUN', args: 'a && b' });
    assert.deepEqual(df.stages[0] && stageCmd(df.stages[0]), ['node', 'x.js']);
    const ignore = 'node_modules\n**/*.test.ts\ndocs\n.env.*\n!.env.example\n';
    assert.equal(isDockerIgnored('node_modules/x/y.js', ignore), true);
    assert.equal(isDockerIgnored('lib/a.test.ts', ignore), true);
    assert.equal(isDockerIgnored('a.test.ts', ignore), true);
    assert.equal(isDockerIgnored('lib/a.ts', ignore), false);
    assert.equal(isDockerIgnored('docs', ignore), true);
    assert.equal(isDockerIgnored('.env.local', ignore), true);
    assert.equal(isDockerIgnored('.env.example', ignore), false);
  });
});

describe('docker-compose.yml', () => {
  it('works with Compose v1 and v2: no top-level name (v1 refuses it), no fixed network name', () => {
    assert.equal(rawCompose.name, undefined);
    assert.deepEqual(compose.networks?.['xerotier'] ?? {}, {}, 'the network is named per project');
  });

  it('publishes every port on 127.0.0.1 only', () => {
    for (const [name, service] of services) {
      for (const port of service.ports ?? []) assert.match(port, /^127\.0\.0\.1:/, `${name}: ${port}`);
    }
    assert.ok(compose.services['gateway']?.ports?.length, 'the gateway is published');
  });

  it('runs our processes and the state stores with a read-only root filesystem and a tmpfs /tmp', () => {
    for (const [name, service] of services.filter(([, s]) => !s.profiles || s.build)) {
      assert.equal(service.read_only, true, `${name}: read_only`);
      assert.ok(service.tmpfs?.includes('/tmp'), `${name}: tmpfs /tmp`);
    }
  });

  it('validates against the Compose specification schema (docker/compose-spec.json)', () => {
    const { $schema: _draft, ...schema } = JSON.parse(read('docker/compose-spec.json')) as Record<string, unknown>;
    // The spec targets permissive draft-07 validators; strict mode would reject its union types.
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    assert.equal(validate(rawCompose), true, JSON.stringify(validate.errors, null, 2));
    assert.equal(validate(compose), true, JSON.stringify(validate.errors, null, 2));
    // The validator bites: a misspelt key and a wrong type are refused.
    assert.equal(validate({ services: { x: { image: 'a', restrat: 'always' } } }), false);
    assert.equal(validate({ services: { x: { image: 'a', depends_on: { y: { condition: 'healthy' } } } } }), false);
  });

  it('sets only variables the process config schemas accept, with valid values', () => {
    assert.ok(ours.length >= 5, 'gateway, auth, quota and the workers are built from our Dockerfile');
    for (const [name, service] of ours) {
      const entry = entryOf(service);
      const load = loaders[entry];
      assert.ok(load, `${name}: ${entry} has a config loader in this test`);
      const env = envOf(service);
      let config: object;
      try {
        config = load(env);
      } catch (err) {
        assert.fail(`${name}: its environment does not load: ${err instanceof Error ? err.message : String(err)}`);
      }
      // zod objects drop keys they do not declare: whatever is missing from the result is unknown.
      const unknown = Object.keys(env).filter((key) => !(key in config));
      assert.deepEqual(unknown, [], `${name}: variables its config schema does not accept`);
    }
  });

  it('runs each of our processes on 0.0.0.0 with the same SERVICE_TOKEN from .env', () => {
    const tokens = new Set<string>();
    for (const [name, service] of ours) {
      const env = envOf(service);
      const hosts = Object.entries(env).filter(([k]) => /_HOST$/.test(k));
      assert.ok(hosts.length === 1, `${name}: one *_HOST variable`);
      assert.deepEqual(hosts.map(([, v]) => v), ['0.0.0.0'], `${name}: listens on every interface in its container`);
      assert.ok(env['SERVICE_TOKEN'], `${name}: SERVICE_TOKEN is set`);
      tokens.add(env['SERVICE_TOKEN']);
    }
    assert.equal(tokens.size, 1, 'one token for every service');
    assert.equal([...tokens][0], envExample.get('SERVICE_TOKEN'));
    assert.ok(
      refs.some((r) => r.name === 'SERVICE_TOKEN' && r.op === ':?'),
      'SERVICE_TOKEN is required (no built-in default)',
    );
  });

  it('builds every service of ours from a Dockerfile target whose entry file exists', () => {
    for (const [name, service] of ours) {
      assert.equal(service.build?.context, '.', `${name}: build context is the repo root`);
      assert.equal(service.build?.dockerfile, 'docker/Dockerfile', name);
      const entry = entryOf(service);
      assert.ok(existsSync(path.join(root, entry)), `${name}: ${entry} exists`);
      for (const arg of Object.keys(service.build?.args ?? {})) {
        assert.ok(dockerfile.globalArgs.has(arg), `${name}: build arg ${arg} is declared in the Dockerfile`);
      }
      assert.match(service.image ?? '', /^xerotier\/[a-z-]+:/, `${name}: names its image`);
      assert.ok(service.image?.includes(service.build?.target ?? '?'), `${name}: image named after its target`);
    }
  });

  it('gives every service a restart policy, the x-logging settings, a memory limit and the named network', () => {
    assert.ok(compose['x-logging'], 'x-logging anchor');
    assert.deepEqual(Object.keys(compose.networks ?? {}), ['xerotier']);
    for (const [name, service] of services) {
      assert.equal(service.restart, 'unless-stopped', name);
      assert.deepEqual(service.logging, compose['x-logging'], `${name}: logging from the x-logging anchor`);
      assert.match(service.deploy?.resources?.limits?.memory ?? '', /^\d+[kmg]$/, `${name}: memory limit`);
      assert.deepEqual(service.networks, ['xerotier'], `${name}: on the named network`);
    }
  });

  it('health-checks every service; ours with the shipped probe on their own port and service', () => {
    const grpcNames: Record<string, string> = {
      'services/auth/src/main.ts': AuthServiceDefinition.fullName,
      'services/quota/src/main.ts': QuotaServiceDefinition.fullName,
      'services/inference/src/main.ts': InferenceServiceDefinition.fullName,
      'services/ledger/src/main.ts': LedgerServiceDefinition.fullName,
    };
    for (const [name, service] of services) {
      const test = service.healthcheck?.test;
      assert.ok(test && test.length > 1 && !service.healthcheck?.disable, `${name}: has a healthcheck`);
      if (!service.build) continue;
      assert.deepEqual(test.slice(0, 3), ['CMD', 'node', 'dist/docker/health-probe.js'], `${name}: uses the probe`);
      const entry = entryOf(service);
      const port = listenPort(service);
      if (entry === 'gateway/src/main.ts') {
        assert.deepEqual(test.slice(3), [`http://127.0.0.1:${port}/healthz`], name);
      } else {
        assert.deepEqual(test.slice(3), [`127.0.0.1:${port}`, grpcNames[entry]], name);
      }
    }
    assert.ok(existsSync(path.join(root, 'docker/health-probe.ts')), 'the probe source exists');
  });

  it('waits for healthy dependencies only, within the same profiles', () => {
    const byName = new Map(services);
    for (const [name, service] of services) {
      for (const [dep, { condition }] of Object.entries(service.depends_on ?? {})) {
        const target = byName.get(dep);
        assert.ok(target, `${name} depends on ${dep}, which exists`);
        assert.equal(condition, 'service_healthy', `${name} → ${dep}`);
        assert.ok(target.healthcheck?.test && !target.healthcheck.disable, `${name} → ${dep}: ${dep} has a healthcheck`);
        for (const profile of target.profiles ?? []) {
          assert.ok(service.profiles?.includes(profile), `${name} → ${dep}: ${dep}'s profile ${profile} is active too`);
        }
      }
    }
    assert.deepEqual(Object.keys(compose.services['gateway']?.depends_on ?? {}).sort(), ['auth', 'inference-cpu', 'ledger', 'quota']);
  });

  it('declares every named volume it mounts, and mounts every one it declares', () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    const used = new Set<string>();
    for (const [name, service] of services) {
      for (const entry of service.volumes ?? []) {
        const volume = namedVolume(entry);
        if (volume === undefined) continue;
        assert.ok(declared.has(volume), `${name}: volume ${volume} is declared`);
        used.add(volume);
      }
    }
    assert.deepEqual([...declared].sort(), [...used].sort());
    assert.ok(declared.has('models') && declared.has('postgres-data'));
  });

  it('wires addresses: gateway → auth, quota, ledger and workers; auth and ledger → postgres; quota → redis', () => {
    const byName = new Map(services);
    const gateway = envOf(byName.get('gateway') ?? {});
    for (const key of ['AUTH_ADDRESS', 'QUOTA_ADDRESS', 'LEDGER_ADDRESS'] as const) {
      const { host, port } = hostPort(gateway[key] ?? '');
      const target = byName.get(host);
      assert.ok(target, `${key} names the ${host} service`);
      assert.equal(listenPort(target), port, `${key} port is the one ${host} listens on`);
    }
    // CPU workers join auth's registry, each replica under its own id and container address
    // (so `--scale inference-cpu=N` works): no static entry, no fixed id or address, no host port.
    assert.deepEqual(loadGatewayConfig(gateway).INFERENCE_WORKERS, []);
    const cpu = byName.get('inference-cpu') ?? {};
    const registry = hostPort(envOf(cpu)['INFERENCE_REGISTRY_ADDRESS'] ?? '');
    assert.equal(registry.host, 'auth');
    assert.equal(listenPort(byName.get('auth') ?? {}), registry.port);
    assert.equal(envOf(cpu)['INFERENCE_WORKER_ID'], undefined, 'no fixed worker id');
    assert.equal(envOf(cpu)['INFERENCE_ADVERTISE_ADDRESS'], undefined, 'no fixed advertised address');
    assert.deepEqual(cpu.ports ?? [], [], 'replicas publish no host port');
    for (const [service, variable] of [['auth', 'AUTH_DATABASE_URL'], ['ledger', 'LEDGER_DATABASE_URL']] as const) {
      const dbUrl = new URL(envOf(byName.get(service) ?? {})[variable] ?? '');
      assert.equal(dbUrl.hostname, 'postgres', variable);
      assert.equal(dbUrl.username, envOf(byName.get('postgres') ?? {})['POSTGRES_USER']);
      assert.equal(dbUrl.password, envOf(byName.get('postgres') ?? {})['POSTGRES_PASSWORD']);
      assert.equal(dbUrl.pathname, `/${envOf(byName.get('postgres') ?? {})['POSTGRES_DB']}`);
    }
    assert.equal(new URL(envOf(byName.get('quota') ?? {})['QUOTA_REDIS_URL'] ?? '').hostname, 'redis');
  });

  it('offers GPU workers per vendor as profiles: an openai-engine worker in front of that vendor’s vLLM', () => {
    const pools = new Set([...loadTierTable().values()].flatMap((t) => t.pools));
    const byName = new Map(services);
    const expectations = {
      'gpu-nvidia': (s: Service) =>
        assert.ok(s.deploy?.resources?.reservations?.devices?.some((d) => d.driver === 'nvidia' && d.capabilities?.includes('gpu'))),
      'gpu-amd': (s: Service) => assert.deepEqual([...(s.devices ?? [])].sort(), ['/dev/dri', '/dev/kfd']),
      'gpu-intel': (s: Service) => assert.deepEqual(s.devices, ['/dev/dri']),
    };
    for (const [profile, checkDevices] of Object.entries(expectations)) {
      const members = services.filter(([, s]) => s.profiles?.includes(profile));
      const workers = members.filter(([, s]) => s.build?.target?.startsWith('inference'));
      assert.equal(workers.length, 1, `${profile}: one inference worker`);
      const [workerName, worker] = workers[0] ?? ['', {}];
      const env = envOf(worker);
      assert.equal(env['INFERENCE_ENGINE'], 'openai', workerName);
      assert.equal(env['INFERENCE_HARDWARE_CLASS'], profile, `${workerName} declares its vendor's class`);
      assert.ok(pools.has(profile), `${profile} is a pool of the tier table`);
      const upstream = new URL(env['OPENAI_UPSTREAM_URL'] ?? '');
      const engine = byName.get(upstream.hostname);
      assert.ok(engine, `${workerName}: upstream ${upstream.hostname} is a service`);
      assert.ok(engine.profiles?.includes(profile), `${workerName}: upstream ${upstream.hostname} is in ${profile}`);
      assert.match(engine.image ?? '', /vllm/, `${upstream.hostname} runs vLLM`);
      assert.ok(engine.command?.includes(upstream.port), `${upstream.hostname} listens on ${upstream.port}`);
      checkDevices(engine);
      assert.ok(Object.keys(worker.depends_on ?? {}).includes(upstream.hostname));
    }
    const inProcess = byName.get('inference-nvidia-llamacpp');
    assert.equal(inProcess?.build?.target, 'inference-gpu', 'the CUDA image is used by the llama.cpp GPU profile');
    assert.equal(envOf(inProcess ?? {})['LLAMA_GPU'], 'cuda');
  });

  it('reads ports, versions and secrets from .env: .env.example defines exactly what the file uses', () => {
    const used = new Set(refs.map((r) => r.name));
    assert.deepEqual([...used].filter((v) => !envExample.has(v)).sort(), [], 'used but not in .env.example');
    assert.deepEqual([...envExample.keys()].filter((v) => !used.has(v)).sort(), [], 'in .env.example but unused');
    const defaults = new Map<string, string>();
    for (const ref of refs.filter((r) => r.op === ':-' || r.op === '-')) {
      const seen = defaults.get(ref.name);
      assert.ok(seen === undefined || seen === ref.arg, `${ref.name} has one default (${seen} vs ${ref.arg})`);
      defaults.set(ref.name, ref.arg);
      assert.equal(envExample.get(ref.name), ref.arg, `.env.example ${ref.name} equals the compose default`);
    }
    for (const secret of ['SERVICE_TOKEN', 'AUTH_KEY_PEPPER', 'POSTGRES_PASSWORD']) {
      assert.ok(!defaults.has(secret), `${secret} has no default`);
    }
    const gateway = compose.services['gateway'];
    const published = `127.0.0.1:${envExample.get('GATEWAY_PUBLISH_PORT')}:8080`;
    assert.ok(gateway?.ports?.includes(published), `the gateway publishes ${published}`);
    assert.ok(
      rawCompose.services['postgres']?.image?.includes('${POSTGRES_VERSION') &&
        rawCompose.services['redis']?.image?.includes('${REDIS_VERSION'),
      'versions of postgres and redis come from .env',
    );
    // Without .env the file refuses to start rather than run with a published default secret.
    assert.throws(() => interpolate(rawCompose, new Map()), /SERVICE_TOKEN|AUTH_KEY_PEPPER|POSTGRES_PASSWORD/);
  });
});

describe('docker/Dockerfile', () => {
  const targets = ['gateway', 'auth', 'quota', 'ledger', 'inference-cpu', 'inference-gpu'];

  it('has no syntax directive (BuildKit would fetch a frontend image) and builds no GPU stage for a CPU target', () => {
    assert.doesNotMatch(read('docker/Dockerfile'), /^#\s*syntax\s*=/im);
    // The classic builder builds every stage above the target: GPU stages must come after the CPU ones.
    const order = dockerfile.stages.map((s) => s.name ?? '');
    const lastCpu = Math.max(...['gateway', 'auth', 'quota', 'ledger', 'inference-cpu'].map((t) => order.indexOf(t)));
    for (const gpu of ['prod-deps-gpu', 'inference-gpu']) assert.ok(order.indexOf(gpu) > lastCpu, `${gpu} after the CPU targets`);
  });

  it('has a target per process, each running node on its compiled main.js', () => {
    for (const target of targets) {
      const stage = stageByName.get(target);
      assert.ok(stage, `target ${target}`);
      const cmd = stageCmd(stage);
      assert.ok(cmd && cmd[0] === 'node' && cmd.length === 2, `${target}: CMD ["node", "dist/…/main.js"]`);
      const source = (cmd[1] ?? '').replace(/^dist\//, '').replace(/\.js$/, '.ts');
      assert.ok(loaders[source], `${target} runs one of our processes (${source})`);
      assert.ok(existsSync(path.join(root, source)), `${source} exists`);
    }
  });

  it('is multi-stage on node:20-bookworm-slim with npm ci, a build and production-only runtimes', () => {
    assert.equal(resolveFrom(dockerfile.stages[0]?.from ?? '', dockerfile.globalArgs), 'node:20-bookworm-slim');
    const runs = (name: string): string =>
      (stageByName.get(name)?.instructions ?? []).filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    assert.match(runs('deps'), /npm ci\b/);
    assert.doesNotMatch(runs('deps'), /--omit=dev/, 'the build needs dev dependencies (tsc)');
    assert.match(runs('build'), /npm run build/);
    assert.match(runs('toolchain'), /python3 make g\+\+/, 'node-gyp toolchain for better-sqlite3');
    assert.match(runs('prod-deps'), /npm ci --omit=dev --omit=optional/);
    assert.match(runs('prod-deps'), /npm rebuild better-sqlite3/);
    assert.match(runs('prod-deps-cpu'), /@node-llama-cpp\/\$\{platform\}@\$\{NODE_LLAMA_CPP_VERSION\}/);
    assert.equal(dockerfile.globalArgs.get('NODE_LLAMA_CPP_VERSION'), JSON.parse(read('package.json')).dependencies['node-llama-cpp']);
    assert.match(runs('prod-deps-gpu'), /npm ci --omit=dev --ignore-scripts/);
    assert.doesNotMatch(runs('prod-deps-gpu'), /--omit=optional/, 'the GPU image keeps the CUDA binaries');
    assert.match(dockerfile.globalArgs.get('CUDA_IMAGE') ?? '', /^nvidia\/cuda:[\d.]+-runtime-/);
    assert.equal(stageByName.get('inference-gpu')?.from, '${CUDA_IMAGE}');
  });

  it('copies what the compiled code reads next to itself into dist/', () => {
    const build = (stageByName.get('build')?.instructions ?? []).map((i) => i.args).join('\n');
    // lib/grpc/server.ts and lib/tiers/tier-table.ts resolve these from import.meta.dirname/../..
    assert.match(read('lib/grpc/server.ts'), /import\.meta\.dirname, '\.\.', '\.\.', 'gen', 'descriptor-set\.binpb'/);
    assert.match(read('lib/tiers/tier-table.ts'), /import\.meta\.dirname, '\.\.', '\.\.', 'config', 'tiers\.json'/);
    assert.match(build, /cp gen\/descriptor-set\.binpb dist\/gen\/descriptor-set\.binpb/);
    assert.match(build, /cp config\/tiers\.json dist\/config\/tiers\.json/);
    assert.match(build, /--outDir dist\/docker docker\/health-probe\.ts/);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignore = read('.dockerignore');
    for (const stage of dockerfile.stages) {
      for (const { keyword, args } of stage.instructions) {
        if (keyword !== 'COPY' || args.startsWith('--from=')) continue;
        const parts = args.split(' ').filter((p) => !p.startsWith('--'));
        for (const source of parts.slice(0, -1)) {
          assert.ok(existsSync(path.join(root, source)), `${stage.name}: COPY ${source} exists`);
          assert.equal(isDockerIgnored(source, ignore), false, `${stage.name}: COPY ${source} is not .dockerignored`);
        }
      }
    }
    for (const secret of ['.env', '.git', 'node_modules', '.data']) {
      assert.equal(isDockerIgnored(secret, ignore), true, `${secret} stays out of the build context`);
    }
  });
});
