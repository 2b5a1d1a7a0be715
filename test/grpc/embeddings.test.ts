/**
 * CreateEmbedding through the gateway's gRPC front door (typed client, real gRPC between every
 * process). The workers run the simulator engine: its vectors are hash-derived and say nothing
 * about language; what is under test is the front door (auth, endpoint kind, refusals by field,
 * quota metadata, usage), which is the same whatever the engine.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Status } from 'nice-grpc';
import { SIMULATOR_EMBEDDING_DIMENSIONS } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { startPlatform, type Platform } from '../helpers/platform.js';
import { unthrottledTiers } from '../helpers/tiers.js';
import { clientFor, failure } from './helpers.js';

describe('gRPC front door: embeddings', () => {
  let platform: Platform;
  before(async () => {
    const tiers = unthrottledTiers();
    platform = await startPlatform({ gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
  });
  after(() => platform.stop());

  it('embeds a batch on the embeddings endpoint: one vector per input, usage and rate-limit metadata', async () => {
    const chat = clientFor(platform);
    try {
      let metadata: Record<string, string> = {};
      const r = await chat.createEmbedding(
        { project: 'demo', endpoint: 'embeddings', inputs: ['first text', 'second', 'first text'] },
        { onMetadata: (m) => (metadata = m) },
      );
      assert.equal(r.model, 'simulator');
      assert.ok(r.workerId.length > 0);
      assert.deepEqual(r.embeddings.map((e) => e.index), [0, 1, 2]);
      assert.ok(r.embeddings.every((e) => e.values.length === SIMULATOR_EMBEDDING_DIMENSIONS));
      assert.deepEqual(r.embeddings[2]!.values, r.embeddings[0]!.values);
      assert.notDeepEqual(r.embeddings[1]!.values, r.embeddings[0]!.values);
      // The simulator counts with the shared estimate: ceil(characters / 4) per input.
      assert.deepEqual(r.usage, { promptTokens: 3 + 2 + 3, completionTokens: 0, totalTokens: 8 });
      assert.match(metadata['x-request-id'] ?? '', /^req_/);
      assert.ok(metadata['x-ratelimit-limit-requests'], 'rate-limit figures in the metadata');
      const sized = await chat.createEmbedding({ project: 'demo', endpoint: 'embeddings', inputs: ['x'], dimensions: 8 });
      assert.equal(sized.embeddings[0]!.values.length, 8, 'the simulator honours dimensions');
    } finally {
      chat.close();
    }
  });

  it('refuses by field, and refuses the wrong endpoint kind both ways', async () => {
    const chat = clientFor(platform);
    try {
      const bad = async (request: Parameters<typeof chat.createEmbedding>[0], param: string) => {
        const err = await failure(chat.createEmbedding(request), Status.INVALID_ARGUMENT, 'invalid_request');
        assert.equal(err.info['param'], param);
      };
      await bad({ project: 'demo', endpoint: 'embeddings', inputs: [] }, 'inputs');
      await bad({ project: 'demo', endpoint: 'embeddings', inputs: ['ok', ''] }, 'inputs');
      await bad({ project: 'demo', endpoint: 'embeddings', inputs: ['ok'], dimensions: 0 }, 'dimensions');
      await failure(chat.createEmbedding({ project: 'demo', endpoint: 'chat', inputs: ['hi'] }), Status.INVALID_ARGUMENT, 'endpoint_kind_mismatch');
      await failure(
        chat.complete({ project: 'demo', endpoint: 'embeddings', messages: [{ role: 'user', content: 'hi' }] }),
        Status.INVALID_ARGUMENT,
        'endpoint_kind_mismatch',
      );
    } finally {
      chat.close();
    }
  });
});
