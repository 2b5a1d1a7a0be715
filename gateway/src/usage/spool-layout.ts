/**
 * Where each gateway process keeps its usage spool under GATEWAY_USAGE_SPOOL_DIR (one process per
 * spool directory, spool.ts): a single gateway process uses the directory itself; with
 * GATEWAY_PROCESSES = N, process k uses `process-<k>/` in it. So that changing N strands no
 * record, a process also takes over (and delivers) the segments of directories no process of the
 * current layout uses: the single process those of every `process-<k>/`; process 1 those left in
 * the directory itself and in `process-<k>/` for k > N.
 */
import path from 'node:path';

const PROCESS_DIR = /^process-(\d+)$/;

export interface SpoolLayout {
  /** This process's own spool directory. */
  dir: string;
  /** Directories whose segments this process takes over at start. */
  adopt: string[];
}

/**
 * `entries`: the names in the base directory (empty when it does not exist yet); `place`: this
 * process's number and the process count under a cluster primary, undefined for a single process.
 */
export function spoolLayout(base: string, entries: readonly string[], place: { process: number; processes: number } | undefined): SpoolLayout {
  const processDirs = entries.flatMap((name) => {
    const n = Number(PROCESS_DIR.exec(name)?.[1] ?? NaN);
    return Number.isSafeInteger(n) ? [{ name, n }] : [];
  });
  if (place === undefined) return { dir: base, adopt: processDirs.map((d) => path.join(base, d.name)) };
  const dir = path.join(base, `process-${place.process}`);
  if (place.process !== 1) return { dir, adopt: [] };
  return { dir, adopt: [base, ...processDirs.filter((d) => d.n > place.processes).map((d) => path.join(base, d.name))] };
}
