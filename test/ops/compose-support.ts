/**
 * What test/ops needs to check docker-compose.yml and docker/Dockerfile without Docker: a .env
 * reader, Compose variable interpolation, a Dockerfile reader and a .dockerignore matcher.
 * Each follows the documented rules only as far as our files use them, and throws on anything
 * else so a new construct fails loudly instead of being checked wrongly.
 */

/** `.env` as Compose reads it: KEY=VALUE lines, `#` comments, optional matching quotes. */
export function parseDotenv(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) throw new Error(`.env line ${i + 1} is not KEY=VALUE: ${raw}`);
    let value = m[2];
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted?.[2] !== undefined) value = quoted[2];
    vars.set(m[1], value);
  }
  return vars;
}

export interface VariableRef {
  name: string;
  /** '' (plain), ':-' / '-' (default), ':?' / '?' (required), ':+' / '+' (alternative). */
  op: '' | ':-' | '-' | ':?' | '?' | ':+' | '+';
  arg: string;
}

const REF = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\?|\?|:\+|\+)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*)|(\$))/g;

/**
 * Compose interpolation of one string (compose-spec "Interpolation"): `$$` is a literal `$`;
 * `${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
 * `${VAR:+alt}`, `${VAR+alt}`. Nested expressions are not supported (and not used).
 */
export function interpolateString(
  input: string,
  env: ReadonlyMap<string, string>,
  refs: VariableRef[] = [],
): string {
  const out = input.replace(REF, (whole, braced?: string, op?: string, arg?: string, bare?: string, dollar?: string) => {
    if (dollar) return '$';
    const name = braced ?? bare;
    if (!name) throw new Error(`cannot interpolate ${whole}`);
    const ref: VariableRef = { name, op: (op ?? '') as VariableRef['op'], arg: arg ?? '' };
    if (ref.arg.includes('$')) throw new Error(`nested interpolation is not supported: ${whole}`);
    refs.push(ref);
    const value = env.get(name);
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    switch (ref.op) {
      case '':
        return value ?? '';
      case ':-':
        return nonEmpty ? value : ref.arg;
      case '-':
        return set ? value : ref.arg;
      case ':?':
        if (!nonEmpty) throw new Error(`required variable ${name} is missing: ${ref.arg}`);
        return value;
      case '?':
        if (!set) throw new Error(`required variable ${name} is missing: ${ref.arg}`);
        return value;
      case ':+':
        return nonEmpty ? ref.arg : '';
      case '+':
        return set ? ref.arg : '';
    }
  });
  return out;
}

/** Interpolates every string value of a parsed Compose document (keys are left alone). */
export function interpolate<T>(doc: T, env: ReadonlyMap<string, string>, refs: VariableRef[] = []): T {
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return interpolateString(value, env, refs);
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    }
    return value;
  };
  return walk(doc) as T;
}

export interface DockerfileStage {
  name: string | undefined;
  from: string;
  /** Instructions of the stage, continuation lines joined, comments dropped. */
  instructions: Array<{ keyword: string; args: string }>;
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Map<string, string | undefined>;
  stages: DockerfileStage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  if (current.trim() !== '') logical.push(current.trim());

  const globalArgs = new Map<string, string | undefined>();
  const stages: DockerfileStage[] = [];
  for (const line of logical) {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) throw new Error(`not a Dockerfile instruction: ${line}`);
    const keyword = m[1].toUpperCase();
    const args = m[2].replace(/\s+/g, ' ');
    if (keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from?.[1]) throw new Error(`cannot read FROM ${args}`);
      stages.push({ name: from[2], from: from[1], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) {
      if (keyword !== 'ARG') throw new Error(`${keyword} before the first FROM`);
      const arg = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(args);
      if (!arg?.[1]) throw new Error(`cannot read ARG ${args}`);
      globalArgs.set(arg[1], arg[2]);
      continue;
    }
    stage.instructions.push({ keyword, args });
  }
  return { globalArgs, stages };
}

/** A stage's CMD in exec form (the last one wins), or undefined. */
export function stageCmd(stage: DockerfileStage): string[] | undefined {
  const cmd = stage.instructions.filter((i) => i.keyword === 'CMD').at(-1);
  if (!cmd) return undefined;
  const parsed: unknown = JSON.parse(cmd.args);
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) {
    throw new Error(`CMD must be in exec form: ${cmd.args}`);
  }
  return parsed;
}

/** Resolves `${NAME}` in a FROM against global ARG defaults. */
export function resolveFrom(from: string, globalArgs: ReadonlyMap<string, string | undefined>): string {
  return from.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => globalArgs.get(name) ?? '');
}

/**
 * Whether `.dockerignore` excludes a context path. Supports what ours uses: exact paths,
 * directory prefixes, `*` within a segment, `**` across segments, `!` exceptions (last match wins).
 */
export function isDockerIgnored(path: string, dockerignore: string): boolean {
  let ignored = false;
  for (const raw of dockerignore.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pattern = (negate ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
    const source = pattern
      .split('/')
      .map((seg) =>
        seg === '**'
          ? '(?:.*)'
          : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'),
      )
      .join('/')
      .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
    // A pattern matches the path itself or any directory above it.
    if (new RegExp(`^${source}(?:/.*)?$`).test(path)) ignored = !negate;
  }
  return ignored;
}
