/**
 * Response encoding for a ts-proto service on our gRPC servers, with one reused BinaryWriter.
 *
 * nice-grpc encodes every response as `Type.encode(Type.fromPartial(value)).finish()`: ts-proto's
 * `encode` makes a new BinaryWriter per message, which allocates its buffer (128 bytes, doubled
 * until the message fits) before `finish()` copies the bytes out. A streamed generation sends a
 * start, its deltas (one per token from a model that produces them one by one; the deltas that
 * are ready together are joined, services/inference/src/coalesce-deltas.ts) and a final message,
 * and the worker made and dropped that buffer for each of them.
 * Here every response of the service is encoded into one writer kept by the server; `finish()`
 * still returns a fresh copy of exactly the message's bytes and resets the writer, so a message
 * never shares memory with the next. Encoding is synchronous, so messages cannot interleave.
 *
 * A writer that grew past {@link MAX_KEPT_BYTES} (one large answer) is dropped afterwards, so a
 * server does not hold the largest message it ever sent.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import type { TsProtoServiceDefinition } from 'nice-grpc';

/** A writer whose last message was larger than this is replaced by a new one. */
export const MAX_KEPT_BYTES = 16 * 1024;

type Encode = (message: unknown, writer?: BinaryWriter) => BinaryWriter;

/** The same service definition, its responses encoded through one reused writer. */
export function withReusedResponseWriter<Service extends TsProtoServiceDefinition>(definition: Service): Service {
  let writer = new BinaryWriter();
  const methods: TsProtoServiceDefinition['methods'] = {};
  for (const [key, method] of Object.entries(definition.methods)) {
    const encode = method.responseType.encode as Encode;
    const finish = (): Uint8Array => {
      // finish() copies the bytes out and resets the writer (also after a failed encode).
      const bytes = writer.finish();
      if (bytes.byteLength > MAX_KEPT_BYTES) writer = new BinaryWriter();
      return bytes;
    };
    methods[key] = {
      ...method,
      responseType: {
        ...method.responseType,
        encode: (message: unknown) => {
          try {
            encode(message, writer);
          } catch (err) {
            finish();
            throw err;
          }
          return { finish };
        },
      },
    };
  }
  return { ...definition, methods };
}
