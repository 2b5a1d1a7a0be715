/**
 * The JSON Schemas llama.cpp can enforce. Output is constrained by a grammar that node-llama-cpp
 * builds from a schema; a keyword the grammar cannot express would be silently ignored there, so
 * output could break the schema. This reads a client's schema (response_format or a tool's
 * parameters) and either returns the grammar's spelling of it or refuses it, naming the keyword,
 * as a 400 on the request parameter that carried it.
 *
 * Enforced: type (a single type, or a list of types: a list containing object or array becomes
 * a oneOf), const, enum, oneOf / anyOf (one branch is generated), properties, required,
 * additionalProperties, min/maxProperties, items, prefixItems, min/maxItems, min/maxLength,
 * format date / time / date-time, $ref into $defs. Annotations (description, title, default,
 * examples, $schema, $comment, deprecated, readOnly, writeOnly) are kept or dropped, they do not
 * constrain. Everything else (pattern, minimum, maximum, multipleOf, allOf, not, if/then/else,
 * uniqueItems, patternProperties, other formats, …) is refused.
 */
import { invalidRequest } from '../../../../../lib/errors/app-error.js';

const ANNOTATIONS = new Set(['description', 'title', 'default', 'examples', '$schema', '$comment', '$id', 'deprecated', 'readOnly', 'writeOnly']);
const COMMON = new Set(['type', 'const', 'enum', 'oneOf', 'anyOf', '$defs', '$ref', 'description']);
const BY_TYPE: Record<string, Set<string>> = {
  object: new Set(['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties']),
  array: new Set(['items', 'prefixItems', 'minItems', 'maxItems']),
  string: new Set(['minLength', 'maxLength', 'format']),
  number: new Set(),
  integer: new Set(),
  boolean: new Set(),
  null: new Set(),
};
const FORMATS = new Set(['date', 'time', 'date-time']);
const IMMUTABLE = new Set(['string', 'number', 'integer', 'boolean', 'null']);

export function toGrammarSchema(schema: unknown, param: string): Record<string, unknown> {
  const refuse = (where: string, why: string): never => {
    throw invalidRequest(`'${param}': ${why} at ${where || 'the schema root'}; llama.cpp cannot enforce it.`, { param, code: 'unsupported_schema' });
  };

  function read(node: unknown, where: string): Record<string, unknown> {
    if (node === true || (typeof node === 'object' && node !== null && Object.keys(node).length === 0)) {
      return {}; // any value
    }
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return refuse(where, 'a schema must be an object');
    const s = node as Record<string, unknown>;
    const types = s['type'] === undefined ? [] : Array.isArray(s['type']) ? (s['type'] as unknown[]) : [s['type']];
    for (const t of types) if (typeof t !== 'string' || !(t in BY_TYPE)) refuse(where, `unknown type ${JSON.stringify(t)}`);
    const allowed = new Set([...COMMON, ...types.flatMap((t) => [...(BY_TYPE[t as string] ?? [])])]);
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(s)) {
      if (ANNOTATIONS.has(key)) {
        if (key === 'description' && typeof value === 'string') out[key] = value;
        continue;
      }
      if (!allowed.has(key)) refuse(where, `the keyword '${key}' is not supported`);
      const at = `${where}/${key}`;
      switch (key) {
        case 'properties':
          out[key] = Object.fromEntries(Object.entries(record(value, at)).map(([name, sub]) => [name, read(sub, `${at}/${name}`)]));
          break;
        case '$defs':
          out[key] = Object.fromEntries(Object.entries(record(value, at)).map(([name, sub]) => [name, read(sub, `${at}/${name}`)]));
          break;
        case 'items':
        case 'additionalProperties':
          out[key] = typeof value === 'boolean' && key === 'additionalProperties' ? value : read(value, at);
          break;
        case 'prefixItems':
        case 'oneOf':
        case 'anyOf':
          if (!Array.isArray(value) || value.length === 0) refuse(at, 'must be a non-empty array');
          out[key === 'anyOf' ? 'oneOf' : key] = (value as unknown[]).map((sub, i) => read(sub, `${at}/${i}`));
          break;
        case '$ref':
          if (typeof value !== 'string' || !value.startsWith('#/$defs/')) refuse(at, "only '#/$defs/…' references are supported");
          out[key] = value;
          break;
        case 'format':
          if (typeof value !== 'string' || !FORMATS.has(value)) refuse(at, `the format ${JSON.stringify(value)} is not supported`);
          out[key] = value;
          break;
        case 'type':
          break; // below
        default:
          out[key] = value;
      }
    }
    if (types.length === 1) out['type'] = types[0];
    else if (types.length > 1) {
      if (types.every((t) => IMMUTABLE.has(t as string))) out['type'] = types;
      else {
        // ["object", "null"] and the like: one branch per type, each with its own keywords.
        const { oneOf: _ignored, ...rest } = out;
        return { oneOf: types.map((t) => read({ ...pick(s, t as string), type: t }, where)), ...(rest['description'] ? { description: rest['description'] } : {}) };
      }
    }
    return out;
  }

  function record(value: unknown, where: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return refuse(where, 'must be an object');
    return value as Record<string, unknown>;
  }

  /** The keywords of `s` that belong to `type`. */
  function pick(s: Record<string, unknown>, type: string): Record<string, unknown> {
    const keep = BY_TYPE[type] ?? new Set<string>();
    return Object.fromEntries(Object.entries(s).filter(([k]) => keep.has(k)));
  }

  return read(schema, '');
}
