/**
 * The simulator's deterministic tool-call mode (for tests, never inference): when a request
 * offers tools and does not forbid them, and the conversation does not end with a tool result,
 * the simulator calls one tool — the named one, else the first — with the smallest arguments
 * its schema accepts (required properties only: first enum value, "", 0, false, [], {}). After a
 * tool result it answers with text, so a two-turn tool conversation runs end to end.
 */
import { createHash } from 'node:crypto';
import type { GenerateParams, ToolCall } from '../engine.js';

export function simulatedToolCall(params: GenerateParams): ToolCall | undefined {
  const tools = params.tools ?? [];
  const choice = params.toolChoice ?? { mode: tools.length > 0 ? 'auto' : 'none' };
  if (tools.length === 0 || choice.mode === 'none') return undefined;
  if (params.messages.at(-1)?.role === 'tool' && choice.mode === 'auto') return undefined;
  const tool = choice.mode === 'named' ? tools.find((t) => t.name === choice.name) : tools[0];
  if (tool === undefined) return undefined;
  const id = `call_sim_${createHash('sha256').update(`${params.requestId}\n${tool.name}`).digest('hex').slice(0, 16)}`;
  return { id, name: tool.name, arguments: JSON.stringify(smallestInstance(tool.parameters)) };
}

/** The smallest value a (simple) JSON Schema accepts. */
export function smallestInstance(schema: unknown): unknown {
  if (typeof schema !== 'object' || schema === null) return {};
  const s = schema as Record<string, unknown>;
  if ('const' in s) return s['const'];
  if (Array.isArray(s['enum']) && s['enum'].length > 0) return s['enum'][0];
  const type = Array.isArray(s['type']) ? s['type'][0] : s['type'];
  switch (type) {
    case 'string':
      return '';
    case 'integer':
    case 'number':
      return typeof s['minimum'] === 'number' ? s['minimum'] : 0;
    case 'boolean':
      return false;
    case 'null':
      return null;
    case 'array':
      return [];
    default: {
      const properties = (typeof s['properties'] === 'object' && s['properties'] !== null ? s['properties'] : {}) as Record<string, unknown>;
      const required = Array.isArray(s['required']) ? (s['required'] as string[]) : [];
      return Object.fromEntries(required.map((name) => [name, smallestInstance(properties[name])]));
    }
  }
}
