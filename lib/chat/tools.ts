/**
 * Tool calling and output constraints as every layer sees them once the wire format is read
 * (OpenAI `tools`, `tool_choice`, `response_format`, `tool_calls`), and their proto spelling on
 * the gateway → worker hop.
 */
import {
  ResponseFormatType,
  ToolChoiceMode,
  type ResponseFormat as ProtoResponseFormat,
  type Tool as ProtoTool,
} from '../../gen/xerotier/inference/v1/inference_service.js';

/** A function the model may call. `parameters` is a JSON Schema (an object schema). */
export interface ToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  strict: boolean;
}

/** One call the assistant made; `arguments` is JSON text. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A piece of a streamed tool call: id and name on its first piece, argument fragments after. */
export interface ToolCallDelta {
  index: number;
  id?: string | undefined;
  name?: string | undefined;
  arguments: string;
}

export type ToolChoice = { mode: 'none' | 'auto' | 'required' } | { mode: 'named'; name: string };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; strict: boolean };

const modeToProto: Record<ToolChoice['mode'], ToolChoiceMode> = {
  none: ToolChoiceMode.TOOL_CHOICE_MODE_NONE,
  auto: ToolChoiceMode.TOOL_CHOICE_MODE_AUTO,
  required: ToolChoiceMode.TOOL_CHOICE_MODE_REQUIRED,
  named: ToolChoiceMode.TOOL_CHOICE_MODE_NAMED,
};

export function toolChoiceToProto(choice: ToolChoice | undefined): { toolChoice: ToolChoiceMode; toolChoiceName: string } {
  if (choice === undefined) return { toolChoice: ToolChoiceMode.TOOL_CHOICE_MODE_UNSPECIFIED, toolChoiceName: '' };
  return { toolChoice: modeToProto[choice.mode], toolChoiceName: choice.mode === 'named' ? choice.name : '' };
}

/** The request's tool choice; unspecified reads as OpenAI's default: `auto` with tools, else `none`. */
export function toolChoiceFromProto(mode: ToolChoiceMode, name: string, hasTools: boolean): ToolChoice {
  switch (mode) {
    case ToolChoiceMode.TOOL_CHOICE_MODE_NONE:
      return { mode: 'none' };
    case ToolChoiceMode.TOOL_CHOICE_MODE_AUTO:
      return { mode: 'auto' };
    case ToolChoiceMode.TOOL_CHOICE_MODE_REQUIRED:
      return { mode: 'required' };
    case ToolChoiceMode.TOOL_CHOICE_MODE_NAMED:
      return { mode: 'named', name };
    default:
      return { mode: hasTools ? 'auto' : 'none' };
  }
}

export function toolToProto(tool: ToolSpec): ProtoTool {
  return { name: tool.name, description: tool.description, parametersJson: JSON.stringify(tool.parameters), strict: tool.strict };
}

export function toolFromProto(tool: ProtoTool): ToolSpec {
  return {
    name: tool.name,
    description: tool.description,
    parameters: tool.parametersJson === '' ? { type: 'object' } : (JSON.parse(tool.parametersJson) as Record<string, unknown>),
    strict: tool.strict,
  };
}

export function responseFormatToProto(format: ResponseFormat | undefined): ProtoResponseFormat | undefined {
  switch (format?.type) {
    case undefined:
      return undefined;
    case 'text':
      return { type: ResponseFormatType.RESPONSE_FORMAT_TYPE_TEXT, name: '', schemaJson: '', strict: false };
    case 'json_object':
      return { type: ResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_OBJECT, name: '', schemaJson: '', strict: false };
    case 'json_schema':
      return { type: ResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, name: format.name, schemaJson: JSON.stringify(format.schema), strict: format.strict };
  }
}

/** Undefined for plain text (absent, unspecified or `text`). */
export function responseFormatFromProto(format: ProtoResponseFormat | undefined): ResponseFormat | undefined {
  switch (format?.type) {
    case ResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_OBJECT:
      return { type: 'json_object' };
    case ResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
      return {
        type: 'json_schema',
        name: format.name,
        schema: format.schemaJson === '' ? {} : (JSON.parse(format.schemaJson) as Record<string, unknown>),
        strict: format.strict,
      };
    default:
      return undefined;
  }
}

/** A fresh OpenAI-style call id. */
export function newToolCallId(random: () => string): string {
  return `call_${random()}`;
}
