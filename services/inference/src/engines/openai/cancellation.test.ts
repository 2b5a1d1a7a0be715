/** The openai engine's cancel path: every way a generation ends early reaches the upstream. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../../../../lib/errors/app-error.js';
import { estimatePromptTokens } from '../../../../../lib/chat/prompt-tokens.js';
import type { EngineEvent } from '../engine.js';
import { collect, MESSAGES, openAITestKit, params, waitFor } from '../../../../../test/helpers/openai-engine-kit.js';

const { setup, closeAll } = openAITestKit();
after(closeAll);

describe('openai engine: cancellation reaches the upstream', () => {
  it('aborting the signal closes the upstream connection within 100 ms and yields a cancelled final', async () => {
    const { engine, mock } = await setup({ tokens: 10_000, interTokenMs: 5 });
    const controller = new AbortController();
    const events: EngineEvent[] = [];
    let abortedAt = 0;
    const seenByUpstream = mock.nextAbort();
    for await (const ev of engine.generate(params(), controller.signal)) {
      events.push(ev);
      if (events.length === 3) {
        abortedAt = performance.now();
        controller.abort();
      }
    }
    const latency = (await seenByUpstream) - abortedAt;
    console.log(`# cancel latency (signal abort → mock sees connection closed): ${latency.toFixed(2)} ms`);
    assert.ok(latency < 100, `latency ${latency} ms`);
    assert.equal(mock.aborted(), 1);
    const final = events.at(-1);
    assert.equal(final?.type, 'final');
    assert.equal(final.type === 'final' && final.finishReason, 'cancelled');
    assert.ok(final.type === 'final' && final.usage.completionTokens >= 3);
    assert.equal(final.type === 'final' && final.usage.promptTokens, estimatePromptTokens(MESSAGES));
    await waitFor(() => mock.active() === 0);
  });

  it('the consumer calling .return() (break) aborts the upstream request within 100 ms', async () => {
    const { engine, mock } = await setup({ tokens: 10_000, interTokenMs: 5 });
    const seenByUpstream = mock.nextAbort();
    let n = 0;
    let brokeAt = 0;
    for await (const ev of engine.generate(params(), new AbortController().signal)) {
      if (ev.type === 'delta' && ++n === 3) {
        brokeAt = performance.now();
        break;
      }
    }
    const latency = (await seenByUpstream) - brokeAt;
    console.log(`# cancel latency (iterator .return() → mock sees connection closed): ${latency.toFixed(2)} ms`);
    assert.ok(latency < 100, `latency ${latency} ms`);
    assert.equal(mock.aborted(), 1);
  });

  it('aborting before the first token (upstream still prefilling) is seen by the upstream', async () => {
    const { engine, mock } = await setup({ ttftMs: 5000 });
    const controller = new AbortController();
    const seenByUpstream = mock.nextAbort();
    const run = collect(engine.generate(params(), controller.signal));
    // Abort once the upstream holds the request (a blind timer could abort before it arrives).
    await waitFor(() => mock.active() === 1);
    controller.abort();
    const r = await run;
    assert.equal(r.final.finishReason, 'cancelled');
    assert.equal(r.final.usage.completionTokens, 0);
    await seenByUpstream;
    assert.equal(mock.aborted(), 1);
  });

  it('an already-aborted signal yields cancelled without a completed upstream request', async () => {
    const { engine, mock } = await setup({ tokens: 5 });
    const controller = new AbortController();
    controller.abort();
    const r = await collect(engine.generate(params(), controller.signal));
    assert.equal(r.final.finishReason, 'cancelled');
    assert.equal(mock.requests(), 0);
  });

  it('close() aborts in-flight generations', async () => {
    const { engine, mock } = await setup({ tokens: 10_000, interTokenMs: 5 });
    const run = collect(engine.generate(params(), new AbortController().signal));
    await waitFor(() => mock.active() === 1);
    await engine.close();
    await assert.rejects(run, (err: unknown) => err instanceof AppError && err.kind === 'unavailable');
    await waitFor(() => mock.aborted() === 1, 100);
  });
});
