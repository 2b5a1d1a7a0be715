/**
 * Flags of `npm run bench` (the gateway comparison), read once by bench/run.ts.
 *
 *   --profile        also run the gateway under --cpu-prof and summarise the profile
 *   --profile-only   only the profile run
 *   --rounds=3 --sat-seconds=5 --rate-seconds=4 --idle-streams=1000 --connections=32
 *   --no-write       print the report, do not write docs/BENCHMARKS.md
 *   --quick          smoke run: one short round of everything (1 s per load, 50 idle streams,
 *                    20 TTFT requests each way), never writes docs/; only checks that the
 *                    benchmark runs end to end, its figures mean nothing
 */
import { parseArgs } from 'node:util';

export interface GatewayFlags {
  rounds: number;
  satSeconds: number;
  rateSeconds: number;
  idleStreams: number;
  connections: number;
  /** Fixed request rates of the open-loop runs (req/s). */
  rates: readonly number[];
  ttft: { sequential: number; concurrent: number; concurrency: number };
  /** Saturation seconds per kind (non-stream, stream) of the profile run. */
  profileSeconds: number;
  /** Run the comparison (everything but --profile-only). */
  main: boolean;
  profile: boolean;
  write: boolean;
  /** How this run was started, for the report. */
  command: string;
}

/** Thrown for a flag out of range; the entry prints its message (no stack) and exits 2. */
export class FlagError extends Error {}

function intFlag(name: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new FlagError(`--${name} must be an integer in ${min}..${max} (got ${String(v)})`);
  return n;
}

export function parseGatewayFlags(argv: string[]): GatewayFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      profile: { type: 'boolean', default: false },
      'profile-only': { type: 'boolean', default: false },
      rounds: { type: 'string', default: '3' },
      'sat-seconds': { type: 'string', default: '5' },
      'rate-seconds': { type: 'string', default: '4' },
      'idle-streams': { type: 'string', default: '1000' },
      connections: { type: 'string', default: '32' },
      'no-write': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
    },
    allowPositionals: false,
  });
  const quick = values.quick;
  return {
    rounds: quick ? 1 : intFlag('rounds', values.rounds, 1, 10),
    satSeconds: quick ? 1 : intFlag('sat-seconds', values['sat-seconds'], 1, 60),
    rateSeconds: quick ? 1 : intFlag('rate-seconds', values['rate-seconds'], 1, 60),
    idleStreams: quick ? 50 : intFlag('idle-streams', values['idle-streams'], 1, 5000),
    connections: intFlag('connections', values.connections, 1, 1024),
    rates: [200, 500],
    ttft: quick ? { sequential: 20, concurrent: 20, concurrency: 4 } : { sequential: 200, concurrent: 200, concurrency: 16 },
    profileSeconds: quick ? 2 : 8,
    main: !values['profile-only'],
    profile: values.profile || values['profile-only'],
    write: !values['no-write'] && !quick,
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
  };
}
