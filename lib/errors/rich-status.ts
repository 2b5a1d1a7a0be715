/**
 * gRPC's rich error model on the wire: the `grpc-status-details-bin` trailer holds a
 * `google.rpc.Status` whose `details` are `google.protobuf.Any` messages. We send and read three
 * of the standard detail types: `google.rpc.ErrorInfo` (reason = our error `code`, domain,
 * metadata), `google.rpc.RetryInfo` (retry delay) and `google.rpc.QuotaFailure` (which limit).
 * Encoded field by field with @bufbuild/protobuf's wire codec; the field numbers are those of
 * googleapis' google/rpc/status.proto and google/rpc/error_details.proto.
 */
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

export const STATUS_DETAILS_TRAILER = 'grpc-status-details-bin';

const TYPE_PREFIX = 'type.googleapis.com/';
export const ERROR_INFO_TYPE = `${TYPE_PREFIX}google.rpc.ErrorInfo`;
export const RETRY_INFO_TYPE = `${TYPE_PREFIX}google.rpc.RetryInfo`;
export const QUOTA_FAILURE_TYPE = `${TYPE_PREFIX}google.rpc.QuotaFailure`;

export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

export interface QuotaViolation {
  subject: string;
  description: string;
}

export interface RichStatus {
  /** The gRPC status code (same as the call's). */
  code: number;
  message: string;
  errorInfo?: ErrorInfo | undefined;
  /** RetryInfo.retry_delay in milliseconds. */
  retryDelayMs?: number | undefined;
  quotaFailure?: QuotaViolation[] | undefined;
}

export function encodeRichStatus(status: RichStatus): Uint8Array {
  const details: Array<{ typeUrl: string; value: Uint8Array }> = [];
  if (status.errorInfo) {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).string(status.errorInfo.reason);
    w.tag(2, WireType.LengthDelimited).string(status.errorInfo.domain);
    for (const [key, value] of Object.entries(status.errorInfo.metadata)) {
      w.tag(3, WireType.LengthDelimited).fork();
      w.tag(1, WireType.LengthDelimited).string(key);
      w.tag(2, WireType.LengthDelimited).string(value);
      w.join();
    }
    details.push({ typeUrl: ERROR_INFO_TYPE, value: w.finish() });
  }
  if (status.retryDelayMs !== undefined) {
    const ms = Math.max(0, Math.round(status.retryDelayMs));
    const w = new BinaryWriter();
    // RetryInfo.retry_delay (google.protobuf.Duration: seconds, nanos).
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(1, WireType.Varint).int64(Math.floor(ms / 1000));
    w.tag(2, WireType.Varint).int32((ms % 1000) * 1_000_000);
    w.join();
    details.push({ typeUrl: RETRY_INFO_TYPE, value: w.finish() });
  }
  if (status.quotaFailure) {
    const w = new BinaryWriter();
    for (const v of status.quotaFailure) {
      w.tag(1, WireType.LengthDelimited).fork();
      w.tag(1, WireType.LengthDelimited).string(v.subject);
      w.tag(2, WireType.LengthDelimited).string(v.description);
      w.join();
    }
    details.push({ typeUrl: QUOTA_FAILURE_TYPE, value: w.finish() });
  }
  const w = new BinaryWriter();
  w.tag(1, WireType.Varint).int32(status.code);
  w.tag(2, WireType.LengthDelimited).string(status.message);
  for (const d of details) {
    w.tag(3, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(d.typeUrl);
    w.tag(2, WireType.LengthDelimited).bytes(d.value);
    w.join();
  }
  return w.finish();
}

/** Reads the detail types above; unknown details and fields are skipped. */
export function decodeRichStatus(bytes: Uint8Array): RichStatus {
  const status: RichStatus = { code: 0, message: '' };
  fields(bytes, (field, r) => {
    if (field === 1) status.code = r.int32();
    else if (field === 2) status.message = r.string();
    else if (field === 3) {
      let typeUrl = '';
      let value: Uint8Array = new Uint8Array();
      fields(r.bytes(), (f, a) => {
        if (f === 1) typeUrl = a.string();
        else if (f === 2) value = a.bytes();
        else return false;
        return true;
      });
      readDetail(status, typeUrl, value);
    } else return false;
    return true;
  });
  return status;
}

function readDetail(status: RichStatus, typeUrl: string, value: Uint8Array): void {
  if (typeUrl === ERROR_INFO_TYPE) {
    const info: ErrorInfo = { reason: '', domain: '', metadata: {} };
    fields(value, (f, r) => {
      if (f === 1) info.reason = r.string();
      else if (f === 2) info.domain = r.string();
      else if (f === 3) {
        let key = '';
        let val = '';
        fields(r.bytes(), (ef, er) => {
          if (ef === 1) key = er.string();
          else if (ef === 2) val = er.string();
          else return false;
          return true;
        });
        info.metadata[key] = val;
      } else return false;
      return true;
    });
    status.errorInfo = info;
  } else if (typeUrl === RETRY_INFO_TYPE) {
    let ms = 0;
    fields(value, (f, r) => {
      if (f !== 1) return false;
      fields(r.bytes(), (df, dr) => {
        if (df === 1) ms += Number(dr.int64()) * 1000;
        else if (df === 2) ms += dr.int32() / 1_000_000;
        else return false;
        return true;
      });
      return true;
    });
    status.retryDelayMs = ms;
  } else if (typeUrl === QUOTA_FAILURE_TYPE) {
    const violations: QuotaViolation[] = [];
    fields(value, (f, r) => {
      if (f !== 1) return false;
      const v: QuotaViolation = { subject: '', description: '' };
      fields(r.bytes(), (vf, vr) => {
        if (vf === 1) v.subject = vr.string();
        else if (vf === 2) v.description = vr.string();
        else return false;
        return true;
      });
      violations.push(v);
      return true;
    });
    status.quotaFailure = violations;
  }
}

/** Calls `read` for each field; a field it does not read (returns false) is skipped. */
function fields(bytes: Uint8Array, read: (field: number, reader: BinaryReader) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (!read(field, r)) r.skip(wireType);
  }
}
