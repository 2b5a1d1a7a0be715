/** Input checks shared by the admin RPCs, and how user input may be echoed in messages. */
import { randomBytes } from 'node:crypto';
import { invalidRequest } from '../../../lib/errors/app-error.js';
import { PROJECT_SLUG } from './api-key.js';

/** Endpoint slugs follow the same rule as project slugs. */
export const ENDPOINT_SLUG = PROJECT_SLUG;

export const newId = (kind: 'proj' | 'ep' | 'key'): string => `${kind}_${randomBytes(12).toString('hex')}`;

/** Display names: 1–100 printable characters, no control characters; blank = `fallback`. */
export function validName(name: string, param: string, fallback: string): string {
  const trimmed = name.trim();
  if (trimmed === '') return fallback;
  if (trimmed.length > 100 || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw invalidRequest(`${param} must be 1-100 printable characters.`, { param });
  }
  return trimmed;
}

export function validSlug(slug: string, param: string): string {
  if (!ENDPOINT_SLUG.test(slug)) {
    throw invalidRequest(
      `${param} must be 1-40 characters of lowercase letters, digits and hyphens, starting with a letter or digit.`,
      { param },
    );
  }
  return slug;
}

/** Echo user input in messages only when it is a harmless slug or project id. */
export const quoted = (s: string): string => (ENDPOINT_SLUG.test(s) || /^proj_[0-9a-f]{24}$/.test(s) ? `'${s}'` : 'given');
