/**
 * Writes a tiny llama-architecture GGUF model whose greedy output is known in advance, so the
 * llama-cpp engine can be tested with real inference, offline and in well under a second.
 *
 * The "successor" weights make greedy decoding predict the next ASCII character:
 *   raw prompt " "  → `!"#$%&'()*+,-./0123456789:;<=>?@ABC…`
 *   raw prompt "v"  → `wxyz{|}~` then <|im_end|> (EOS)
 *   ChatML chat     → the rendered prompt ends in "\n", so the reply is `ABC…xyz{|}~` then EOS.
 * Every other token (control tokens, bytes outside '!'..'~', "@") leads to "A".
 *
 * How: each token embeds as the random "class vector" of the token that should follow it, and
 * each output row is the class vector of its own token. Attention and FFN weights are random
 * but their output projections are tiny, so every layer is still computed (realistic cost, and a
 * wrong tensor layout still breaks the output) while the residual stream keeps the class vector.
 * All randomness is a seeded PRNG (mulberry32 + Box-Muller, one stream per tensor), so the file
 * is byte-for-byte reproducible (seeded-random.ts); the file format is gguf-writer.ts. No
 * dependencies, no network.
 *
 * Used by the tests, the benchmarks, and create-engine.ts when the configured model cannot be had
 * (LLAMA_FALLBACK_TINY). CLI: node --import tsx scripts/make-tiny-gguf.ts out.gguf [--seed N]
 */
import { writeFile } from 'node:fs/promises';
import { ALIGNMENT, serializeGguf, type MetadataValue, type TensorSpec } from './gguf-writer.js';
import { gaussianStream, tensorSeed } from './seeded-random.js';

export interface TinyGgufOptions {
  /** PRNG seed; the default gives the file the tests were written against. */
  seed?: number | undefined;
}

/** Shape of the `tiny` preset. */
export const TINY_GGUF = {
  name: 'xerotier-tiny-successor',
  embedding: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  feedForward: 128,
  contextLength: 512,
  vocabSize: 262,
  defaultSeed: 1234,
} as const;

/** The ChatML template stored in `tokenizer.chat_template`; node-llama-cpp maps it to ChatML. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// Vocabulary layout: <unk> <s> </s> <|im_start|> <|im_end|>, the SPM space "▁", then the
// 256 byte tokens <0x00>..<0xFF>.
const TOKEN_UNK = 0;
const TOKEN_BOS = 1;
const TOKEN_IM_END = 4;
const TOKEN_SPACE = 5;
const FIRST_BYTE_TOKEN = 6;

// GGUF token types (llama.cpp `llama_token_type`).
const TYPE_NORMAL = 1;
const TYPE_UNKNOWN = 2;
const TYPE_CONTROL = 3;
const TYPE_BYTE = 6;

/** Standard deviation of the random projections that feed attention/FFN (≈ 1/sqrt(E)). */
const INPUT_PROJECTION_STD = 0.125;
/** Output projections of attention and FFN stay tiny so the residual keeps the class vector. */
const OUTPUT_PROJECTION_STD = 0.002;
/**
 * Scales the output matrix: the right token's logit is ≈ 8 and the others ≈ N(0, 1). Greedy
 * decoding has a wide margin, and temperature 1 sampling still varies with the seed.
 */
const OUTPUT_SCALE = 0.125;

/** Builds the whole file in memory (≈ 430 KB). */
export function buildTinyGguf(options: TinyGgufOptions = {}): Buffer {
  const seed = options.seed ?? TINY_GGUF.defaultSeed;
  const vocab = buildVocabulary();
  return serializeGguf(buildMetadata(vocab), buildTensors(seed));
}

export async function writeTinyGguf(path: string, options: TinyGgufOptions = {}): Promise<void> {
  await writeFile(path, buildTinyGguf(options));
}

/** The token greedy decoding should produce after `token` (exported for tests and docs). */
export function successorToken(token: number): number {
  const byte = token === TOKEN_SPACE ? 0x20 : token - FIRST_BYTE_TOKEN;
  if (byte >= 0x20 && byte <= 0x7d) return FIRST_BYTE_TOKEN + byte + 1;
  if (byte === 0x7e) return TOKEN_IM_END;
  return FIRST_BYTE_TOKEN + 0x41; // "A"
}

interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
}

function buildVocabulary(): Vocabulary {
  const tokens = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>', '\u2581'];
  const types = [TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL, TYPE_CONTROL, TYPE_CONTROL, TYPE_NORMAL];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TYPE_BYTE);
  }
  // Without a NORMAL "▁" token SPM would encode spaces as 3 bytes and decode them as "▁".
  return { tokens, types, scores: tokens.map(() => 0) };
}

function buildMetadata(vocab: Vocabulary): Array<[string, MetadataValue]> {
  const t = TINY_GGUF;
  const u32 = (value: number): MetadataValue => ({ type: 'u32', value });
  return [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: t.name }],
    ['general.alignment', u32(ALIGNMENT)],
    ['general.file_type', u32(0)], // all F32
    ['general.quantization_version', u32(2)],
    ['llama.context_length', u32(t.contextLength)],
    ['llama.embedding_length', u32(t.embedding)],
    ['llama.block_count', u32(t.layers)],
    ['llama.feed_forward_length', u32(t.feedForward)],
    ['llama.attention.head_count', u32(t.heads)],
    ['llama.attention.head_count_kv', u32(t.kvHeads)],
    ['llama.rope.dimension_count', u32(t.embedding / t.heads)],
    ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
    ['llama.vocab_size', u32(t.vocabSize)],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'f32[]', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: vocab.types }],
    ['tokenizer.ggml.bos_token_id', u32(TOKEN_BOS)],
    // <|im_end|> is EOS as in SmolLM2-Instruct; llama.cpp also treats </s> as end-of-generation.
    ['tokenizer.ggml.eos_token_id', u32(TOKEN_IM_END)],
    ['tokenizer.ggml.unknown_token_id', u32(TOKEN_UNK)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: false }],
    ['tokenizer.chat_template', { type: 'string', value: CHATML_TEMPLATE }],
  ];
}

function buildTensors(seed: number): TensorSpec[] {
  const { embedding: e, feedForward: f, vocabSize: v, layers, heads, kvHeads } = TINY_GGUF;
  const kvWidth = (e / heads) * kvHeads;
  const classes = classVectors(seed, v, e);
  const tensors: TensorSpec[] = [
    { name: 'token_embd.weight', ne: [e, v], data: embeddingMatrix(classes, v, e) },
    { name: 'output_norm.weight', ne: [e], data: ones(e) },
    { name: 'output.weight', ne: [e, v], data: outputMatrix(classes, v, e) },
  ];
  const random = (name: string, ne: number[], std: number): TensorSpec => ({
    name,
    ne,
    data: gaussianArray(tensorSeed(seed, name), ne.reduce((a, b) => a * b, 1), std),
  });
  for (let layer = 0; layer < layers; layer++) {
    const p = `blk.${layer}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, ne: [e], data: ones(e) },
      random(`${p}attn_q.weight`, [e, e], INPUT_PROJECTION_STD),
      random(`${p}attn_k.weight`, [e, kvWidth], INPUT_PROJECTION_STD),
      random(`${p}attn_v.weight`, [e, kvWidth], INPUT_PROJECTION_STD),
      random(`${p}attn_output.weight`, [e, e], OUTPUT_PROJECTION_STD),
      { name: `${p}ffn_norm.weight`, ne: [e], data: ones(e) },
      random(`${p}ffn_gate.weight`, [e, f], INPUT_PROJECTION_STD),
      random(`${p}ffn_up.weight`, [e, f], INPUT_PROJECTION_STD),
      random(`${p}ffn_down.weight`, [f, e], OUTPUT_PROJECTION_STD),
    );
  }
  return tensors;
}

/** One N(0, 1) vector per token id, used for tokens that are some token's successor. */
function classVectors(seed: number, vocabSize: number, width: number): Float32Array[] {
  const next = gaussianStream(tensorSeed(seed, 'successor-classes'));
  return Array.from({ length: vocabSize }, () => Float32Array.from({ length: width }, next));
}

function embeddingMatrix(classes: Float32Array[], vocabSize: number, width: number): Float32Array {
  const out = new Float32Array(vocabSize * width);
  for (let token = 0; token < vocabSize; token++) {
    out.set(classes[successorToken(token)] ?? [], token * width);
  }
  return out;
}

function outputMatrix(classes: Float32Array[], vocabSize: number, width: number): Float32Array {
  const targets = new Set(Array.from({ length: vocabSize }, (_, token) => successorToken(token)));
  const out = new Float32Array(vocabSize * width);
  // Tokens that never follow anything keep a zero row (logit 0), below every real successor.
  for (const token of targets) {
    const row = classes[token] ?? new Float32Array(width);
    out.set(
      row.map((x) => x * OUTPUT_SCALE),
      token * width,
    );
  }
  return out;
}

function ones(length: number): Float32Array {
  return new Float32Array(length).fill(1);
}

function gaussianArray(seed: number, length: number, std: number): Float32Array {
  const next = gaussianStream(seed);
  return Float32Array.from({ length }, () => next() * std);
}
