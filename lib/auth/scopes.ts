/**
 * The one home of API key scope names: the proto enum (`Scope`) on the wire, the strings
 * 'inference' / 'management' everywhere else (database rows, HTTP bodies, the CLI). Every process
 * converts through these functions, so a new scope is added here and nowhere else.
 */
import { Scope } from '../../gen/xerotier/auth/v1/auth_service.js';

/** Every scope name, in canonical order (the order keys store and list them in). */
export const SCOPE_NAMES = ['inference', 'management'] as const;
export type ScopeName = (typeof SCOPE_NAMES)[number];

const byValue: ReadonlyMap<Scope, ScopeName> = new Map([
  [Scope.SCOPE_INFERENCE, 'inference'],
  [Scope.SCOPE_MANAGEMENT, 'management'],
]);
const byName: Readonly<Record<ScopeName, Scope>> = {
  inference: Scope.SCOPE_INFERENCE,
  management: Scope.SCOPE_MANAGEMENT,
};

/** The name of a proto scope; undefined for SCOPE_UNSPECIFIED and unknown values. */
export function scopeName(scope: Scope): ScopeName | undefined {
  return byValue.get(scope);
}

export function scopeValue(name: ScopeName): Scope {
  return byName[name];
}

export function isScopeName(value: string): value is ScopeName {
  return (SCOPE_NAMES as readonly string[]).includes(value);
}

/** The names of the given scopes without duplicates, in canonical order. */
export function canonicalScopes(names: Iterable<ScopeName>): ScopeName[] {
  const set = new Set(names);
  return SCOPE_NAMES.filter((n) => set.has(n));
}
