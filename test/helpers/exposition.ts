/**
 * A small reader of the Prometheus text format, for tests that scrape `/metrics` and assert on
 * values (`sampleValue(text, 'http_requests_total', { route: '/v1/models', status: '200' })`).
 * Handles what prom-client writes: `# HELP`/`# TYPE` lines, `name{l="v",...} value`, escaped
 * label values. Not a general parser (no timestamps, exemplars or OpenMetrics).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(raw: string): number {
  if (raw === '+Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(raw);
}

export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m?.[1] || m[3] === undefined) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      if (l[1] !== undefined && l[2] !== undefined) labels[l[1]] = unescape(l[2]);
    }
    samples.push({ name: m[1], labels, value: parseValue(m[3]) });
  }
  return samples;
}

/** `# TYPE` of each metric family in the text. */
export function metricTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (m[1] && m[2]) types.set(m[1], m[2]);
  }
  return types;
}

/** Value of the one sample named `name` whose labels include `labels`; undefined if none. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const matches = parseExposition(text).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value;
}
