/** Validates bodies against the official OpenAI schemas vendored in test/fixtures/openai (JSON Schema 2020-12). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const file = path.join(import.meta.dirname, '..', 'fixtures', 'openai', 'openai-chat-schemas.json');

export type SchemaName =
  | 'CreateChatCompletionResponse'
  | 'CreateChatCompletionStreamResponse'
  | 'CreateEmbeddingResponse'
  | 'CreateCompletionResponse'
  | 'ListModelsResponse'
  | 'ErrorResponse';

export function createSchemaValidator(): (name: SchemaName, body: unknown) => void {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addFormat('unixtime', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  const doc = JSON.parse(readFileSync(file, 'utf8')) as object;
  ajv.addSchema({ ...doc, $id: 'openai.json' });
  return (name, body) => {
    const validate = ajv.getSchema(`openai.json#/components/schemas/${name}`);
    if (!validate) throw new Error(`no schema ${name}`);
    if (!validate(body)) {
      throw new Error(`${name} invalid: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`);
    }
  };
}
