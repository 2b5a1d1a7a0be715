/**
 * The compose stack, built and started for real, driven from the host and broken on purpose.
 * Run by `npm run test:compose` (needs Docker and the base images of
 * scripts/build-base-images.sh). The file name does not end in `.test.ts` so that `npm test`,
 * which runs every such file, stays free of Docker.
 *
 * One Compose project with a random name, random secrets and free ports on 127.0.0.1
 * (test/compose/stack.ts), the production docker-compose.yml plus test/compose/test-override.yml
 * (tiny generated model, more frequent health checks). `down -v` at the end, whatever happened.
 * Every fault prints its figures; bounds are generous (2 shared cores, other work running).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createStack, type Stack } from './stack.js';
import { chat, client, sleep, stream, type Answer, type StreamResult } from './traffic.js';

/** Platform model id the tiny test model's worker advertises (derived from the model). */
const TINY_MODEL_ID = 'xerotier-tiny-successor';

const SERVICES = ['postgres', 'redis', 'auth', 'quota', 'ledger', 'inference-cpu', 'gateway'];
const OURS = ['auth', 'quota', 'ledger', 'inference-cpu', 'gateway'];
const figure = (text: string): void => void process.stdout.write(`figure: ${text}\n`);

/** Sends requests until one is 200; every other answer is kept for the caller to judge. */
async function untilOk(send: () => Promise<Answer>, timeoutMs: number): Promise<{ failures: Answer[]; seconds: number }> {
  const started = performance.now();
  const failures: Answer[] = [];
  for (;;) {
    const answer = await send();
    if (answer.status === 200) return { failures, seconds: (performance.now() - started) / 1000 };
    failures.push(answer);
    assert.ok(performance.now() - started < timeoutMs, `no 200 within ${timeoutMs} ms; last: ${answer.status} ${answer.code}`);
    await sleep(500);
  }
}

function assertRetryable503s(failures: Answer[], what: string): void {
  for (const f of failures) {
    assert.equal(f.status, 503, `${what}: every failure is a 503 (got ${f.status} ${f.code})`);
    assert.ok(Number(f.retryAfter) >= 1, `${what}: 503 ${f.code} carries Retry-After`);
    assert.ok(f.ms < 5_000, `${what}: 503 answered in ${f.ms.toFixed(0)} ms, not a hang`);
  }
}

const summary = (failures: Answer[]): string =>
  `${failures.length} × 503 (${[...new Set(failures.map((f) => f.code))].join(', ') || '–'}), slowest ` +
  `${Math.max(0, ...failures.map((f) => f.ms)).toFixed(0)} ms`;

describe('docker compose stack', { timeout: 60 * 60_000 }, () => {
  let stack: Stack;
  let demoKey = '';
  let freeKey = '';
  let failed = false;
  /** it() that remembers a failure, so that `after` prints the services' logs. */
  const check = (name: string, fn: () => Promise<void>): void => {
    it(name, async () => {
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    });
  };

  /** A fresh inference key (management API): limits are per key, so each scenario gets its own. */
  const newKey = async (name: string): Promise<string> => {
    const res = await fetch(`${stack.gatewayUrl}/demo/v1/management/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, scopes: ['inference'] }),
    });
    assert.equal(res.status, 201, `create key ${name}`);
    return ((await res.json()) as { key: string }).key;
  };

  before(async () => {
    stack = await createStack(`xerotier-test-${randomBytes(3).toString('hex')}`);
    failed = true; // until the stack is up
    // Interrupted (Ctrl-C, CI timeout): still take the stack down.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => void stack.destroy().finally(() => process.exit(130)));
    }
    let t = performance.now();
    await stack.compose(['build'], 45 * 60_000);
    figure(`build of every default-profile image: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    t = performance.now();
    await stack.compose(['up', '-d'], 15 * 60_000);
    await stack.waitHealthy(SERVICES, 10 * 60_000);
    figure(`up -d until every health check passes: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    demoKey = (await stack.exec('auth', ['cat', '/app/.data/demo-api-key'])).trim();
    assert.match(demoKey, /^xero_demo_/);
    // The worker serves the tiny test model here (test-override.yml): the endpoints name its id.
    await stack.exec('auth', ['node', 'dist/bin/xero.js', 'endpoints', 'set-model', 'demo', 'chat', TINY_MODEL_ID]);
    failed = false;
  });

  after(async () => {
    if (!stack) return;
    if (failed) process.stdout.write(await stack.compose(['logs', '--no-color', '--tail', '40']).catch(() => ''));
    await stack.destroy();
  });

  check('publishes only on 127.0.0.1 and runs hardened: non-root, read-only root, memory limit, restart policy', async () => {
    for (const service of SERVICES) {
      const id = await stack.containerId(service);
      const [info] = JSON.parse(await stack.inspect(id)) as Inspect[];
      assert.ok(info, service);
      const bindings = Object.values(info.HostConfig.PortBindings ?? {}).flat();
      for (const b of bindings) assert.equal(b?.HostIp, '127.0.0.1', `${service} publishes on 127.0.0.1 only`);
      assert.ok(info.Config.User && !/^(root|0)(:|$)/.test(info.Config.User), `${service} runs as ${info.Config.User}`);
      assert.equal(info.HostConfig.ReadonlyRootfs, true, `${service}: read-only root filesystem`);
      assert.ok(info.HostConfig.Memory > 0, `${service}: memory limit applied`);
      assert.equal(info.HostConfig.RestartPolicy.Name, 'unless-stopped', service);
    }
    assert.deepEqual(
      Object.keys((JSON.parse(await stack.inspect(await stack.containerId('gateway'))) as Inspect[])[0]?.HostConfig.PortBindings ?? {}),
      ['8080/tcp'],
    );
  });

  check('serves models, a completion and a stream with usage through the official openai SDK', async () => {
    const openai = client(stack.gatewayUrl, demoKey);
    const models = await openai.models.list();
    assert.equal(models.data.length, 1);
    const completion = await openai.chat.completions.create({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(completion.object, 'chat.completion');
    assert.ok((completion.usage?.completion_tokens ?? 0) > 0);
    const chunks = await openai.chat.completions.create({
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 8,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    let text = '';
    let usage;
    for await (const chunk of chunks) {
      text += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.ok(text.length > 0 && (usage?.completion_tokens ?? 0) > 0, 'streamed text and usage');
    figure(`model ${completion.model}, ${usage?.completion_tokens} streamed tokens`);
  });

  check('answers management calls: lists keys and creates one that then works', async () => {
    const url = `${stack.gatewayUrl}/demo/v1/management/api-keys`;
    const headers = { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' };
    const list = await fetch(url, { headers });
    assert.equal(list.status, 200);
    assert.ok(((await list.json()) as { data: unknown[] }).data.length >= 1);
    const created = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ name: 'compose', scopes: ['inference'] }) });
    assert.equal(created.status, 201);
    const { key } = (await created.json()) as { key: string };
    assert.equal((await chat(stack.gatewayUrl, key)).status, 200);
  });

  check('keeps one usage record per request in the ledger (PostgreSQL), with the tokens the client saw', async () => {
    const answer = await chat(stack.gatewayUrl, demoKey);
    assert.equal(answer.status, 200);
    const usage = (answer.body as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
    const since = Math.floor(Date.now() / 1000) - 600;
    const t = performance.now();
    interface UsageRow {
      id: string;
      prompt_tokens: number;
      completion_tokens: number;
      worker_id: string;
    }
    let record: UsageRow | undefined;
    while (!record) {
      const res = await fetch(`${stack.gatewayUrl}/demo/v1/usage/records?start_time=${since}&limit=1000`, { headers: { authorization: `Bearer ${demoKey}` } });
      assert.equal(res.status, 200);
      const page = (await res.json()) as { data: UsageRow[] };
      record = page.data.find((r) => r.id === answer.requestId);
      if (!record) {
        assert.ok(performance.now() - t < 30_000, 'the record reached the ledger within 30 s');
        await sleep(250);
      }
    }
    assert.equal(record.prompt_tokens, usage.prompt_tokens);
    assert.equal(record.completion_tokens, usage.completion_tokens);
    assert.equal(record.worker_id, answer.workerId);
    figure(`usage record of ${answer.requestId} readable after ${((performance.now() - t) / 1000).toFixed(1)} s`);
  });

  check('refuses the request past the free tier’s 20 per minute with 429 and Retry-After', async () => {
    await stack.exec('auth', ['node', 'dist/bin/xero.js', 'endpoints', 'create', 'demo', 'free', '--tier', 'free', '--model', TINY_MODEL_ID]);
    const out = await stack.exec('auth', ['node', 'dist/bin/xero.js', '--json', 'keys', 'create', 'demo', '--name', 'free', '--scopes', 'inference']);
    freeKey = (JSON.parse(out) as { key: string }).key;
    const answers: Answer[] = [];
    for (let i = 0; i < 21; i++) answers.push(await chat(stack.gatewayUrl, freeKey, '/demo/free/v1', 1));
    assert.deepEqual(answers.slice(0, 20).map((a) => a.status), Array(20).fill(200));
    const last = answers[20];
    assert.equal(last?.status, 429);
    assert.equal(last?.code, 'rate_limit_exceeded');
    assert.ok(Number(last?.retryAfter) >= 1);
    figure(`21st free-tier request: 429 in ${last?.ms.toFixed(0)} ms, Retry-After ${last?.retryAfter} s`);
  });

  check('inference worker crash: fast 503 with Retry-After, 200 again once the restart policy brings it back', async () => {
    const key = await newKey('inference-crash');
    assert.equal((await chat(stack.gatewayUrl, key)).status, 200);
    await stack.crash('inference-cpu');
    const { failures, seconds } = await untilOk(() => chat(stack.gatewayUrl, key), 120_000);
    assert.ok(failures.length > 0, 'the crash was visible');
    assertRetryable503s(failures, 'inference down');
    figure(`inference crash: ${summary(failures)}; 200 again after ${seconds.toFixed(1)} s`);
    await stack.waitHealthy(['inference-cpu'], 120_000);
  });

  check('quota crash: fail-closed (the documented default) answers 503 with Retry-After, then recovers', async () => {
    const key = await newKey('quota-crash');
    assert.equal((await chat(stack.gatewayUrl, key)).status, 200);
    await stack.crash('quota');
    const { failures, seconds } = await untilOk(() => chat(stack.gatewayUrl, key), 120_000);
    assert.ok(failures.length > 0, 'the crash was visible');
    assertRetryable503s(failures, 'quota down');
    figure(`quota crash: ${summary(failures)}; 200 again after ${seconds.toFixed(1)} s`);
    await stack.waitHealthy(['quota'], 120_000);
  });

  check('auth crash: a key used in the last GATEWAY_AUTH_CACHE_TTL_MS (5 s) keeps working, an uncached one gets 503', async () => {
    // The kill must land well within the 5 s bound after the warming request; on a busy host the
    // docker exec alone can take seconds, so the scenario is retried (auth restarts in between).
    const fresh = { key: await newKey('auth-crash-uncached') };
    let cached: Answer | undefined;
    let uncached: Answer | undefined;
    let age = Infinity;
    for (let attempt = 1; attempt <= 3 && age >= 4_000; attempt++) {
      await stack.waitHealthy(['auth'], 120_000);
      const warm = await newKey(`auth-crash-cached-${attempt}`);
      const kill = await stack.prepareCrash('auth');
      assert.equal((await chat(stack.gatewayUrl, warm)).status, 200);
      const warmed = performance.now();
      await kill();
      cached = await chat(stack.gatewayUrl, warm);
      age = performance.now() - warmed;
      uncached = await chat(stack.gatewayUrl, fresh.key);
      figure(`auth crash (attempt ${attempt}): cached key ${cached.status} at ${age.toFixed(0)} ms after its last check; uncached key ${uncached.status} ${uncached.code ?? ''} in ${uncached.ms.toFixed(0)} ms`);
    }
    assert.ok(age < 4_000, 'the crash landed within the cache bound');
    assert.equal(cached?.status, 200, 'a cached key keeps working within the bound');
    if (uncached && uncached.status !== 200) assertRetryable503s([uncached], 'auth down, uncached key');
    const { failures, seconds } = await untilOk(() => chat(stack.gatewayUrl, fresh.key), 120_000);
    assertRetryable503s(failures, 'auth down');
    figure(`auth crash: uncached key 200 again after ${seconds.toFixed(1)} s`);
    await stack.waitHealthy(['auth'], 120_000);
  });

  check('restarting PostgreSQL and Redis keeps keys, projects and endpoints, and the limits still hold', async () => {
    const survivor = await newKey('before-restart');
    const t = performance.now();
    await stack.compose(['restart', 'postgres', 'redis'], 120_000);
    await stack.waitHealthy(['postgres', 'redis'], 120_000);
    await sleep(5_500); // past the gateway's auth cache: the next checks go to PostgreSQL
    const { failures, seconds } = await untilOk(() => chat(stack.gatewayUrl, survivor), 120_000);
    assertRetryable503s(failures, 'after the restart');
    figure(`postgres + redis restart: healthy, then 200 after ${((performance.now() - t) / 1000).toFixed(1)} s (${seconds.toFixed(1)} s of it polling)`);
    const projects = await stack.exec('auth', ['node', 'dist/bin/xero.js', '--json', 'endpoints', 'list', 'demo']);
    assert.match(projects, /"free"/, 'the endpoint created before the restart exists');
    // The free tier still allows 20 a minute (a key made after the restart: Redis kept no window).
    const key = await newKey('after-restart');
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await chat(stack.gatewayUrl, key, '/demo/free/v1', 1)).status);
    assert.equal(statuses.filter((s) => s === 200).length, 20, statuses.join(','));
    assert.equal(statuses[20], 429);
    const older = await chat(stack.gatewayUrl, freeKey, '/demo/free/v1', 1);
    assert.ok(older.status === 200 || older.status === 429, `the key created before the restart is still known (${older.status})`);
  });

  check('`compose restart gateway` under light traffic: every request that had started completes', async () => {
    const results: StreamResult[] = [];
    let running = true;
    // Light traffic: two clients, each with its own key (60 requests/min), about 2 streams a second.
    const loop = async (openai: ReturnType<typeof client>): Promise<void> => {
      while (running) {
        results.push(await stream(openai, 48));
        await sleep(400);
      }
    };
    const loops = [loop(client(stack.gatewayUrl, await newKey('restart-a'))), loop(client(stack.gatewayUrl, await newKey('restart-b')))];
    await sleep(2_000);
    const t = performance.now();
    await stack.compose(['restart', '-t', '30', 'gateway'], 120_000);
    await stack.waitHealthy(['gateway'], 120_000);
    const restartSeconds = (performance.now() - t) / 1000;
    await sleep(3_000);
    running = false;
    await Promise.all(loops);
    const count = (o: string) => results.filter((r) => r.outcome === o).length;
    const refused = results.filter((r) => r.outcome === 'refused');
    figure(
      `gateway restart (${restartSeconds.toFixed(1)} s until healthy): ${results.length} streams, ${count('completed')} completed, ` +
        `${refused.length} refused (${[...new Set(refused.map((r) => `${r.status} ${r.code}`))].join(', ') || '–'}), ` +
        `${count('not-connected')} not connected, ${count('broken')} broken`,
    );
    assert.equal(count('broken'), 0, 'no stream that had started was cut');
    for (const r of refused) assert.ok(r.status === 503 && Number(r.retryAfter) >= 1, `refusal ${r.status} is a retryable 503`);
    assert.ok(count('completed') > 0);
    assert.equal(results.at(-1)?.outcome, 'completed', 'traffic flows again');
  });

  check('`--scale inference-cpu=3`: three workers, each under its own id and address, serve requests', async () => {
    const t = performance.now();
    await stack.compose(['up', '-d', '--no-recreate', '--scale', 'inference-cpu=3', 'inference-cpu'], 10 * 60_000);
    const ids = (await stack.compose(['ps', '-q', 'inference-cpu'])).split('\n').filter(Boolean);
    assert.equal(ids.length, 3);
    const until = Date.now() + 5 * 60_000;
    for (;;) {
      const states = await Promise.all(ids.map((id) => stack.inspect(id, '{{.State.Health.Status}}')));
      if (states.every((s) => s.trim() === 'healthy')) break;
      assert.ok(Date.now() < until, `replicas healthy within 5 min: ${states.join(', ')}`);
      await sleep(1_000);
    }
    const healthy = (performance.now() - t) / 1000;
    const key = await newKey('scaled');
    const workers = new Set<string>();
    const deadline = Date.now() + 120_000;
    let requests = 0;
    // Concurrent waves, so that least-loaded routing has to use more than one worker.
    while (workers.size < 3 && Date.now() < deadline) {
      const answers = await Promise.all(Array.from({ length: 9 }, () => chat(stack.gatewayUrl, key, '/demo/chat/v1', 24)));
      requests += answers.length;
      for (const a of answers) if (a.status === 200) workers.add(a.workerId);
    }
    figure(`scale inference-cpu=3: healthy after ${healthy.toFixed(1)} s; ${workers.size} distinct workers served ${requests} requests (${[...workers].join(', ')})`);
    assert.equal(workers.size, 3, `three workers served: ${[...workers].join(', ')}`);
    await stack.compose(['up', '-d', '--no-recreate', '--scale', 'inference-cpu=1', 'inference-cpu'], 5 * 60_000);
  });

  check('keeps the secrets out of every image and every log line', async () => {
    const env = await stack.exec('auth', ['node', '-e', 'process.stdout.write(JSON.stringify([process.env.SERVICE_TOKEN, process.env.AUTH_KEY_PEPPER]))']);
    const secrets = [...(JSON.parse(env) as string[]), demoKey.slice(-20)];
    assert.ok(secrets.every((s) => s.length >= 16));
    const logs = await stack.compose(['logs', '--no-color'], 120_000);
    for (const s of secrets) assert.ok(!logs.includes(s), 'a secret appears in the logs');
    for (const service of OURS) {
      const image = JSON.parse(await stack.inspect(await stack.containerId(service), '{{json .Config.Image}}')) as string;
      const imageEnv = await stack.inspect(image, '{{json .Config.Env}}');
      assert.doesNotMatch(imageEnv, /SERVICE_TOKEN|AUTH_KEY_PEPPER|PASSWORD/, `${image} has no secret in its environment`);
    }
  });
});

interface Inspect {
  Config: { User: string };
  HostConfig: {
    PortBindings: Record<string, Array<{ HostIp: string }> | null> | null;
    ReadonlyRootfs: boolean;
    Memory: number;
    RestartPolicy: { Name: string };
  };
}
