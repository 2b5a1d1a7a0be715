/**
 * A minimal GGUF (version 3) writer: metadata key/values and F32 tensors, little-endian, with the
 * data section aligned. Enough to write the tiny test model (tiny-gguf.ts); no quantized types.
 */

// GGUF metadata value types.
const GGUF_U32 = 4;
const GGUF_I32 = 5;
const GGUF_F32 = 6;
const GGUF_BOOL = 7;
const GGUF_STRING = 8;
const GGUF_ARRAY = 9;

const GGML_TYPE_F32 = 0;
/** `general.alignment` of the files we write: tensor data starts on this boundary. */
export const ALIGNMENT = 32;

export type MetadataValue =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'f32[]'; value: readonly number[] }
  | { type: 'i32[]'; value: readonly number[] };

export interface TensorSpec {
  name: string;
  /** GGUF order: ne[0] is the contiguous dimension (a PyTorch [out, in] weight is [in, out]). */
  ne: number[];
  data: Float32Array;
}



/** Little-endian byte sink; everything in GGUF is little-endian. */
class ByteWriter {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  get size(): number {
    return this.length;
  }

  bytes(buffer: Buffer): void {
    this.chunks.push(buffer);
    this.length += buffer.length;
  }

  u32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    this.bytes(b);
  }

  i32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    this.bytes(b);
  }

  u64(value: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(value));
    this.bytes(b);
  }

  f32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.bytes(b);
  }

  /** GGUF string: u64 byte length + UTF-8, no terminator. */
  string(value: string): void {
    const utf8 = Buffer.from(value, 'utf8');
    this.u64(utf8.length);
    this.bytes(utf8);
  }

  padTo(alignment: number): void {
    const rest = this.length % alignment;
    if (rest !== 0) this.bytes(Buffer.alloc(alignment - rest));
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

export function serializeGguf(metadata: Array<[string, MetadataValue]>, tensors: TensorSpec[]): Buffer {
  const w = new ByteWriter();
  w.bytes(Buffer.from('GGUF', 'ascii'));
  w.u32(3); // version
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.string(key);
    writeMetadataValue(w, value);
  }
  let offset = 0;
  for (const tensor of tensors) {
    w.string(tensor.name);
    w.u32(tensor.ne.length);
    for (const dim of tensor.ne) w.u64(dim);
    w.u32(GGML_TYPE_F32);
    w.u64(offset); // relative to the data section, aligned
    offset += alignUp(tensor.data.length * 4, ALIGNMENT);
  }
  w.padTo(ALIGNMENT);
  for (const tensor of tensors) {
    w.bytes(float32Le(tensor.data));
    w.padTo(ALIGNMENT);
  }
  return w.toBuffer();
}

function writeMetadataValue(w: ByteWriter, entry: MetadataValue): void {
  switch (entry.type) {
    case 'u32':
      w.u32(GGUF_U32);
      w.u32(entry.value);
      return;
    case 'f32':
      w.u32(GGUF_F32);
      w.f32(entry.value);
      return;
    case 'bool':
      w.u32(GGUF_BOOL);
      w.bytes(Buffer.from([entry.value ? 1 : 0]));
      return;
    case 'string':
      w.u32(GGUF_STRING);
      w.string(entry.value);
      return;
    case 'string[]':
      writeArrayHeader(w, GGUF_STRING, entry.value.length);
      for (const item of entry.value) w.string(item);
      return;
    case 'f32[]':
      writeArrayHeader(w, GGUF_F32, entry.value.length);
      for (const item of entry.value) w.f32(item);
      return;
    case 'i32[]':
      writeArrayHeader(w, GGUF_I32, entry.value.length);
      for (const item of entry.value) w.i32(item);
      return;
  }
}

function writeArrayHeader(w: ByteWriter, elementType: number, count: number): void {
  w.u32(GGUF_ARRAY);
  w.u32(elementType);
  w.u64(count);
}

/** Explicit little-endian copy, so the bytes do not depend on the host's endianness. */
function float32Le(data: Float32Array): Buffer {
  const out = Buffer.alloc(data.length * 4);
  data.forEach((value, index) => out.writeFloatLE(value, index * 4));
  return out;
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
