/**
 * Generations on one GenerateChannel stream against real inference workers (simulator engine, not
 * inference) over gRPC: they give what one Generate call each gives, run side by side on the
 * channel, stop on the worker when their caller leaves or their deadline passes, carry the
 * worker's errors as a Generate call would, wait for their reader (per-call flow control), and
 * fail as unavailable once the worker is gone.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createServer } from 'nice-grpc';
import { pino } from 'pino';
import { GenerateRequest, InferenceServiceDefinition, Role, type GenerateResponse } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { isAppError } from '../../../lib/errors/app-error.js';
import { CallCancel } from '../../../lib/grpc/call-cancel.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../../lib/grpc/client.js';
import { loadInferenceConfig } from '../../../services/inference/src/config.js';
import { createSimulatorEngine, type SimulatorOptions } from '../../../services/inference/src/engines/simulator/simulator-engine.js';
import { startInferenceWorker, type InferenceWorker } from '../../../services/inference/src/start.js';
import { CHANNEL_WINDOW, createGenerateChannel } from './generate-channel.js';

const SIMULATOR: SimulatorOptions = {
  tokensPerSecond: 0,
  timeToFirstTokenMs: 0,
  responseTokens: 6,
  contextWindow: 1_000_000,
  failAfterTokens: 0,
  hangAfterTokens: 0,
  crashAfterTokens: 0,
};

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function worker(simulator: Partial<SimulatorOptions> = {}, env: Record<string, string> = {}): Promise<InferenceWorker> {
  const w = await startInferenceWorker(loadInferenceConfig({ INFERENCE_PORT: '0', INFERENCE_DRAIN_GRACE_MS: '100', ...env }), {
    logger: pino({ level: 'silent' }),
    engine: createSimulatorEngine({ ...SIMULATOR, ...simulator }),
  });
  await w.ready;
  cleanup.push(() => w.stop());
  return w;
}

function clients(port: number) {
  const address = `127.0.0.1:${port}`;
  const channel = createGrpcChannel(address);
  cleanup.push(() => channel.close());
  const client = createAppClient(InferenceServiceDefinition, channel, { address, target: 'inference worker' });
  const generateChannel = createGenerateChannel(client);
  cleanup.push(() => generateChannel.close());
  return { client, generateChannel };
}

function request(id: string, content = 'hello there'): GenerateRequest {
  return GenerateRequest.fromPartial({ requestId: id, messages: [{ role: Role.ROLE_USER, content, name: '' }], stop: [] });
}

async function collect(events: AsyncIterable<GenerateResponse>): Promise<GenerateResponse[]> {
  const out: GenerateResponse[] = [];
  for await (const e of events) out.push(e);
  return out;
}

/** What a caller relies on of a generation: the text, the finish reason and the usage (ids and timings vary). */
function answer(events: GenerateResponse[]) {
  return {
    started: events[0]?.start !== undefined,
    text: events.map((e) => e.delta?.text ?? '').join(''),
    final: events.at(-1)?.final,
  };
}

const waitFor = async (check: () => boolean, ms: number, what: string): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('generate channel', () => {
  it('gives what a Generate call gives, for many generations side by side on one stream', async () => {
    const w = await worker({ tokensPerSecond: 200 });
    const { client, generateChannel } = clients(w.port);
    const direct = await collect(client.generate(request('d1'), callOptions('d1')));
    let most = 0;
    const runs = Array.from({ length: 8 }, async (_, i) => {
      const events: GenerateResponse[] = [];
      for await (const e of generateChannel.generate(request(`c${i}`), callOptions(`c${i}`))) {
        most = Math.max(most, generateChannel.openCalls());
        events.push(e);
      }
      return events;
    });
    const results = await Promise.all(runs);
    assert.ok(answer(direct).started && answer(direct).text.length > 0);
    for (const events of results) assert.deepEqual(answer(events), answer(direct));
    assert.ok(most > 1, `generations overlapped on the channel (most open at once: ${most})`);
    assert.equal(generateChannel.openCalls(), 0);
  });

  it('stops a generation on the worker when its caller leaves, and leaves the others running', async () => {
    const cancelledOnWorker: string[] = [];
    const w = await worker({ responseTokens: 3, hangAfterTokens: 1, onCancel: (id) => cancelledOnWorker.push(id) });
    const { generateChannel } = clients(w.port);
    const leaving = new CallCancel();
    const left = generateChannel.generate(request('leaving'), callOptions('leaving', leaving))[Symbol.asyncIterator]();
    const stays = generateChannel.generate(request('staying'), callOptions('staying'))[Symbol.asyncIterator]();
    assert.ok((await left.next()).value?.start, 'the leaving call started');
    assert.ok((await left.next()).value?.delta, 'the leaving call streams (then waits)');
    assert.ok((await stays.next()).value?.start, 'the staying call started');
    const pending = left.next();
    leaving.abort(new Error('client gone'));
    await assert.rejects(pending, (err: unknown) => isAppError(err) && err.kind === 'cancelled');
    await waitFor(() => cancelledOnWorker.includes('leaving'), 2000, 'the worker to see the cancel');
    assert.deepEqual(cancelledOnWorker, ['leaving'], 'only the call that was left is cancelled');
    assert.ok((await stays.next()).value?.delta, 'the other call still streams');
    await stays.return?.(undefined);
    await waitFor(() => cancelledOnWorker.includes('staying'), 2000, 'the second cancel');
  });

  it('ends a call at its deadline as a timeout, on both sides', async () => {
    const cancelledOnWorker: string[] = [];
    const w = await worker({ hangAfterTokens: 1, onCancel: (id) => cancelledOnWorker.push(id) });
    const { generateChannel } = clients(w.port);
    const started = Date.now();
    await assert.rejects(
      collect(generateChannel.generate(request('late'), callOptions('late', undefined, 300))),
      (err: unknown) => isAppError(err) && err.kind === 'timeout',
    );
    assert.ok(Date.now() - started < 2000, 'the call ended at its deadline');
    await waitFor(() => cancelledOnWorker.includes('late'), 2000, 'the worker to stop the generation');
  });

  it("carries the worker's refusal as a Generate call does (kind, code, retry-after)", async () => {
    const w = await worker({ hangAfterTokens: 1 }, { INFERENCE_CAPACITY: '1', INFERENCE_QUEUE_CAPACITY: '0' });
    const { client, generateChannel } = clients(w.port);
    const busy = new CallCancel();
    const holding = generateChannel.generate(request('holding'), callOptions('holding', busy))[Symbol.asyncIterator]();
    assert.ok((await holding.next()).value?.start);
    const viaCall = await collect(client.generate(request('x'), callOptions('x'))).then(
      () => assert.fail('expected a refusal'),
      (err: unknown) => err,
    );
    const viaChannel = await collect(generateChannel.generate(request('y'), callOptions('y'))).then(
      () => assert.fail('expected a refusal'),
      (err: unknown) => err,
    );
    assert.ok(isAppError(viaCall) && isAppError(viaChannel));
    assert.equal(viaChannel.kind, viaCall.kind);
    assert.equal(viaChannel.code, viaCall.code);
    assert.equal(viaChannel.code, 'capacity_exceeded');
    assert.equal(viaChannel.retryAfterSeconds, viaCall.retryAfterSeconds);
    busy.abort(new Error('done'));
    await assert.rejects(holding.next());
  });

  it('holds a generation whose caller does not read, after at most a window of events', async () => {
    let produced = 0;
    const w = await worker({ responseTokens: 100_000, onToken: () => (produced += 1) });
    const { generateChannel } = clients(w.port);
    const events = generateChannel.generate(request('slow-reader'), callOptions('slow-reader'))[Symbol.asyncIterator]();
    assert.ok((await events.next()).value?.start);
    await waitFor(() => produced > 0, 2000, 'the generation to start');
    let last = -1;
    while (produced !== last) {
      last = produced;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(produced < 100_000, `the worker waits for its reader (stopped after ${produced} tokens)`);
    // The deltas ready together travel as one event: the window bounds events, not tokens.
    let read = 0;
    let tokens = 0;
    for (;;) {
      const next = await events.next();
      if (next.done) break;
      read += 1;
      tokens += next.value.delta?.tokenCount ?? 0;
    }
    assert.equal(tokens, 100_000, 'the whole answer arrives once the caller reads');
    assert.ok(read > CHANNEL_WINDOW, `more events than one window went through (${read})`);
  });

  it('sends its generations one Generate call each to a worker of an older version (no GenerateChannel)', async () => {
    const { generateChannel: _absent, ...methods } = InferenceServiceDefinition.methods;
    const olderDefinition = { ...InferenceServiceDefinition, methods };
    const served: string[] = [];
    const server = createServer();
    server.add(olderDefinition, {
      async *generate(req: GenerateRequest) {
        served.push(req.requestId);
        yield { start: { model: 'old', systemFingerprint: '', workerId: 'old', promptTokens: 1 } };
        yield { delta: { text: 'hi', tokenCount: 1, toolCalls: [], reasoning: '' } };
        yield { final: { finishReason: 1, usage: { promptTokens: 1, completionTokens: 1 } } };
      },
      getStatus: () => Promise.reject(new Error('not used')),
      async *watchStatus() {
        throw new Error('not used');
      },
      embed: () => Promise.reject(new Error('not used')),
    });
    const port = await server.listen('127.0.0.1:0');
    cleanup.push(() => server.forceShutdown());
    const { generateChannel } = clients(port);
    // The first generation finds the channel refused: it fails as unavailable (the request moves on).
    await assert.rejects(
      collect(generateChannel.generate(request('first'), callOptions('first'))),
      (err: unknown) => isAppError(err) && err.kind === 'unavailable',
    );
    const second = answer(await collect(generateChannel.generate(request('second'), callOptions('second'))));
    assert.equal(second.text, 'hi');
    assert.deepEqual(served, ['second'], 'later generations are Generate calls');
  });

  it('fails as unavailable once the worker is gone, so the request can move to another worker', async () => {
    const w = await worker();
    const { generateChannel } = clients(w.port);
    assert.ok(answer(await collect(generateChannel.generate(request('before'), callOptions('before')))).text.length > 0);
    await w.stop();
    await assert.rejects(
      collect(generateChannel.generate(request('after'), callOptions('after'))),
      (err: unknown) => isAppError(err) && err.kind === 'unavailable',
    );
  });
});
