/** The llama-cpp engine's lifecycle: close() with generations in flight, and a model that is missing. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../../../../lib/errors/app-error.js';
import type { EngineEvent } from '../engine.js';
import { createLlamaCppEngine } from './llama-cpp-engine.js';
import { HI, params, silent } from '../../../../../test/helpers/llama-engine-kit.js';
import { writeTinyGguf } from './tiny-gguf.js';

describe('llama-cpp engine shutdown', () => {
  it('close() cancels in-flight generations, then refuses new work', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llama-cpp-close-'));
    const modelPath = join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    const engine = createLlamaCppEngine(
      { modelPath, gpu: 'cpu', threads: 1, parallel: 1 },
      { logger: silent },
    );
    try {
      await engine.start();
      const events: EngineEvent[] = [];
      let closing: Promise<void> | undefined;
      for await (const event of engine.generate(params(), new AbortController().signal)) {
        events.push(event);
        closing ??= engine.close(); // close while the first delta is in hand
      }
      await closing;
      const final = events.at(-1);
      assert.ok(final?.type === 'final');
      assert.equal(final.finishReason, 'cancelled');
      assert.equal(engine.ready(), false);
      await assert.rejects(engine.countPromptTokens(HI), { kind: 'unavailable' });
      await assert.rejects(engine.start(), { kind: 'unavailable' });
    } finally {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('llama-cpp engine without a model', () => {
  it('fails start() quickly with a clear error when the file is missing and downloads are off', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llama-cpp-missing-'));
    const engine = createLlamaCppEngine(
      { modelPath: join(dir, 'missing.gguf'), allowDownload: false, gpu: 'cpu', threads: 1 },
      { logger: silent },
    );
    try {
      const startedAt = performance.now();
      await assert.rejects(engine.start(), (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.kind, 'unavailable');
        assert.match(err.message, /missing\.gguf/);
        assert.match(err.message, /No model file found/);
        assert.match(err.message, /download disabled/);
        return true;
      });
      assert.ok(performance.now() - startedAt < 2000);
      assert.equal(engine.ready(), false);
      await assert.rejects(engine.countPromptTokens(HI), { kind: 'unavailable' });
      const iterator = engine.generate(params(), new AbortController().signal);
      await assert.rejects(iterator[Symbol.asyncIterator]().next(), { kind: 'unavailable' });
    } finally {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
