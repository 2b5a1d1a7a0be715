/**
 * What a generation must produce, as a llama.cpp grammar: free text; a JSON object
 * (`response_format: json_object`); JSON matching a schema (`json_schema`); or a tool call
 * `{"name": …, "arguments": …}` whose arguments match the tool's parameter schema (tool_choice
 * `required` or named), or, with `auto`, either such a call or text that does not start with `{`.
 * Grammar-constrained output always parses and matches its schema (unless max_tokens cuts it
 * short: finish_reason `length`). Schemas the grammar cannot enforce are refused by name
 * (grammar-schema.ts). One call per turn: a turn with parallel tool calls is not generated.
 */
import type { Llama, LlamaGrammar } from 'node-llama-cpp';
import { invalidRequest } from '../../../../../lib/errors/app-error.js';
import type { GenerateParams, ToolSpec } from '../engine.js';
import { toGrammarSchema } from './grammar-schema.js';

export interface OutputPlan {
  /** 'text': plain (maybe grammar-constrained) text; 'tool': a tool call; 'either': the model picks. */
  mode: 'text' | 'tool' | 'either';
  grammar?: LlamaGrammar | undefined;
  /** Tools documented in the prompt. */
  tools: ToolSpec[];
}

export async function planOutput(llama: Llama, params: GenerateParams): Promise<OutputPlan> {
  const tools = params.tools ?? [];
  const choice = params.toolChoice ?? { mode: tools.length > 0 ? 'auto' : 'none' };
  const format = params.responseFormat;
  if (tools.length > 0 && choice.mode !== 'none') {
    if (format !== undefined && format.type !== 'text') {
      throw invalidRequest("llama.cpp cannot combine 'response_format' with tool calls; send tool_choice 'none' or no response_format.", {
        param: 'response_format',
      });
    }
    const offered = choice.mode === 'named' ? tools.filter((t) => t.name === choice.name) : tools;
    const calls = offered.map(callSchema);
    const schema = calls.length === 1 ? calls[0] : { oneOf: calls };
    const call = await grammarFor(llama, schema, 'tools');
    if (choice.mode !== 'auto') return { mode: 'tool', grammar: call, tools };
    return { mode: 'either', grammar: await callOrText(llama, call), tools };
  }
  switch (format?.type) {
    case 'json_object':
      return { mode: 'text', grammar: await llama.getGrammarFor('json'), tools: [] };
    case 'json_schema': {
      if (Object.keys(format.schema).length === 0) return { mode: 'text', grammar: await llama.getGrammarFor('json'), tools: [] };
      return { mode: 'text', grammar: await grammarFor(llama, toGrammarSchema(format.schema, 'response_format'), 'response_format'), tools: [] };
    }
    default:
      return { mode: 'text', tools: choice.mode === 'none' ? [] : tools };
  }
}

/** `{"name": "<tool>", "arguments": <its parameters>}`, name first so it streams first. */
function callSchema(tool: ToolSpec): Record<string, unknown> {
  return {
    type: 'object',
    properties: { name: { const: tool.name }, arguments: toGrammarSchema(tool.parameters, 'tools') },
    required: ['name', 'arguments'],
    additionalProperties: false,
  };
}

async function grammarFor(llama: Llama, schema: unknown, param: string): Promise<LlamaGrammar> {
  try {
    return await llama.createGrammarForJsonSchema(schema as Parameters<Llama['createGrammarForJsonSchema']>[0]);
  } catch (err) {
    throw invalidRequest(`'${param}': llama.cpp cannot build a grammar for this schema (${err instanceof Error ? err.message.slice(0, 200) : 'invalid schema'}).`, {
      param,
      code: 'unsupported_schema',
    });
  }
}

/** The call grammar or free text; text may not start with `{` or whitespace, so the first character decides. */
async function callOrText(llama: Llama, call: LlamaGrammar): Promise<LlamaGrammar> {
  const root = call.rootRuleName;
  const renamed = call.grammar.replace(new RegExp(`^${root} ::=`, 'm'), 'xerotier-tool-call ::=');
  const grammar = `root ::= xerotier-tool-call | xerotier-text\nxerotier-text ::= [^{ \\t\\n\\r] [^\\x00]*\n${renamed}`;
  return llama.createGrammar({ grammar, stopGenerationTriggers: call.stopGenerationTriggers, trimWhitespaceSuffix: call.trimWhitespaceSuffix });
}
