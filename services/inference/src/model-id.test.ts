import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MODEL_ID, servedModelId } from './model-id.js';

const llama = (model: string) => ({ engine: 'llama-cpp', model });

test('llama.cpp model ids drop case, extension and quantization tag', () => {
  assert.equal(servedModelId(llama('SmolLM2-135M-Instruct-Q8_0'), undefined), 'smollm2-135m-instruct');
  assert.equal(servedModelId(llama('SmolLM2 135M Instruct'), undefined), 'smollm2-135m-instruct');
  assert.equal(servedModelId(llama('Qwen2.5-0.5B-Instruct-Q4_K_M.gguf'), undefined), 'qwen2.5-0.5b-instruct');
  assert.equal(servedModelId(llama('phi-3_mini.IQ3_XXS'), undefined), 'phi-3-mini');
  assert.equal(servedModelId(llama('Model-F16'), undefined), 'model');
  assert.equal(servedModelId(llama('xerotier-tiny-successor'), undefined), 'xerotier-tiny-successor');
});

test('other engines keep their reported id; INFERENCE_MODEL_ID always wins', () => {
  assert.equal(servedModelId({ engine: 'openai', model: 'Qwen/Qwen2.5-0.5B-Instruct' }, undefined), 'Qwen/Qwen2.5-0.5B-Instruct');
  assert.equal(servedModelId({ engine: 'simulator', model: 'simulator' }, undefined), 'simulator');
  assert.equal(servedModelId(llama('SmolLM2-135M-Instruct-Q8_0'), 'smollm2'), 'smollm2');
});

test('derived ids are valid endpoint model names', () => {
  for (const name of ['SmolLM2 135M Instruct', '  weird__name (v2) Q8_0', '___', 'Ünïcode-Q4_0']) {
    assert.match(servedModelId(llama(name), undefined), MODEL_ID, name);
  }
});
