/**
 * The gateway's usage spool: every record the recorder accepts is also appended to a local file
 * (one JSON line, a plain write(2): it survives the process being killed, not the machine
 * losing power), and forgotten once the ledger has acknowledged it. A gateway that was killed
 * (SIGKILL, out of memory) finds what it had not delivered when it starts again and delivers it
 * first; the ledger skips request ids it already has, so records delivered just before the kill
 * are not stored twice.
 *
 * Files are segments `usage-<n>.jsonl`: the current one is emptied in place whenever everything
 * written to it has been acknowledged, and sealed (a new one started) after SEGMENT_RECORDS
 * lines; a sealed segment is deleted once all its records are acknowledged. One gateway process
 * per directory; at open it can take over the segments of other directories no process uses any
 * more (`adopt`, spool-layout.ts): they are moved into its own directory and delivered like its own.
 */
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { UsageRecord } from '../../../gen/xerotier/ledger/v1/ledger_service.js';

const SEGMENT_RECORDS = 10_000;
const SEGMENT_NAME = /^usage-(\d+)\.jsonl$/;

export interface SpooledRecord {
  record: UsageRecord;
  /** The segment holding it (pass to `ack`). */
  segment: number;
}

export interface UsageSpool {
  /** Records a previous process left undelivered, oldest first (read once, at open). */
  readonly recovered: SpooledRecord[];
  /** Appends one record; returns its segment. */
  append(record: UsageRecord): number;
  /** These records were acknowledged by the ledger (or given up): their lines may go. */
  ack(segments: readonly number[]): void;
  close(): void;
}

interface Segment {
  fd: number;
  file: string;
  /** Lines written and not yet acknowledged. */
  unacked: number;
  /** Lines written since the file was last emptied. */
  written: number;
}

/** The segment files of a directory, oldest first. */
function segmentFiles(dir: string): Array<{ name: string; n: number }> {
  return readdirSync(dir)
    .map((name) => ({ name, n: Number(SEGMENT_NAME.exec(name)?.[1] ?? NaN) }))
    .filter((f) => Number.isSafeInteger(f.n))
    .sort((a, b) => a.n - b.n);
}

export function openUsageSpool(dir: string, logger: Logger, adopt: readonly string[] = []): UsageSpool {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const segments = new Map<number, Segment>();
  const recovered: SpooledRecord[] = [];
  let next = 0;
  // Segments of abandoned directories join this one's, numbered after its own (rename: same file system).
  let adopted = 0;
  let last = segmentFiles(dir).at(-1)?.n ?? -1;
  for (const other of adopt) {
    if (!existsSync(other)) continue;
    for (const { name } of segmentFiles(other)) {
      renameSync(path.join(other, name), path.join(dir, `usage-${++last}.jsonl`));
      adopted++;
    }
  }
  if (adopted > 0) logger.info({ segments: adopted }, 'usage spool segments taken over from spool directories no gateway process uses now');
  const numbered = segmentFiles(dir);
  let unreadable = 0;
  for (const { name, n } of numbered) {
    const file = path.join(dir, name);
    next = Math.max(next, n + 1);
    let count = 0;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        recovered.push({ record: UsageRecord.fromJSON(JSON.parse(line)), segment: n });
        count++;
      } catch {
        unreadable++; // a line torn by the kill
      }
    }
    if (count === 0) unlinkSync(file);
    else segments.set(n, { fd: openSync(file, 'a'), file, unacked: count, written: Infinity });
  }
  if (recovered.length > 0 || unreadable > 0) {
    logger.info({ records: recovered.length, unreadable }, 'usage records recovered from the spool; delivering them first');
  }

  const startSegment = (): number => {
    const n = next++;
    const file = path.join(dir, `usage-${n}.jsonl`);
    segments.set(n, { fd: openSync(file, 'a', 0o600), file, unacked: 0, written: 0 });
    return n;
  };
  let current = startSegment();

  const drop = (n: number, segment: Segment): void => {
    closeSync(segment.fd);
    unlinkSync(segment.file);
    segments.delete(n);
  };

  return {
    recovered,
    append(record) {
      let segment = segments.get(current)!;
      if (segment.written >= SEGMENT_RECORDS) {
        if (segment.unacked === 0) drop(current, segment);
        current = startSegment();
        segment = segments.get(current)!;
      }
      writeSync(segment.fd, `${JSON.stringify(UsageRecord.toJSON(record))}\n`);
      segment.unacked++;
      segment.written++;
      return current;
    },
    ack(acked) {
      for (const n of acked) {
        const segment = segments.get(n);
        if (segment) segment.unacked--;
      }
      for (const n of new Set(acked)) {
        const segment = segments.get(n);
        if (!segment || segment.unacked > 0) continue;
        if (n !== current) drop(n, segment);
        else if (segment.written > 0) {
          // Everything in the current file is delivered: empty it (appends go to the new end).
          ftruncateSync(segment.fd, 0);
          segment.written = 0;
        }
      }
    },
    close() {
      for (const [n, segment] of segments) {
        if (segment.unacked === 0) drop(n, segment);
        else closeSync(segment.fd);
      }
    },
  };
}
