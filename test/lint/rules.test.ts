/**
 * The lint rules that `npm test` relies on really fire: each case lints a small source text as if
 * it were a file of the repository (ESLint's lintText with that path; nothing is written) and
 * expects the rule by name. A rule that silently stops resolving imports would pass `npm run lint`
 * on every file; this catches it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ESLint } from 'eslint';

const root = path.join(import.meta.dirname, '..', '..');
let eslint: ESLint;

/** Rule ids reported for `text` linted as the repository file `file`. */
async function rulesFor(file: string, text: string): Promise<string[]> {
  const [result] = await eslint.lintText(text, { filePath: path.join(root, file) });
  assert.ok(result);
  return result.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

describe('eslint.config.js', () => {
  before(() => {
    eslint = new ESLint({ cwd: root });
  });

  it('a service importing another service or the gateway is refused', async () => {
    const other = "import { startQuotaService } from '../../quota/src/start.js';\nexport const x = startQuotaService;\n";
    assert.deepEqual(await rulesFor('services/auth/src/main.ts', other), ['import-x/no-restricted-paths']);
    const gateway = "import { startGateway } from '../../../gateway/src/start.js';\nexport const x = startGateway;\n";
    assert.deepEqual(await rulesFor('services/auth/src/main.ts', gateway), ['import-x/no-restricted-paths']);
    const own = "import { createAuthMetrics } from './metrics.js';\nexport const x = createAuthMetrics;\n";
    assert.deepEqual(await rulesFor('services/auth/src/main.ts', own), []);
  });

  it('the gateway importing a service is refused; gen/ and lib/ are fine', async () => {
    const service = "import { startAuthService } from '../../services/auth/src/start.js';\nexport const x = startAuthService;\n";
    assert.deepEqual(await rulesFor('gateway/src/main.ts', service), ['import-x/no-restricted-paths']);
    const shared =
      "import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';\n" +
      "import { createLogger } from '../../lib/logging/logger.js';\nexport const x = [AuthServiceDefinition, createLogger];\n";
    assert.deepEqual(await rulesFor('gateway/src/main.ts', shared), []);
  });

  it('lib importing process code, and runtime code importing scripts/ or test/, are refused', async () => {
    const gateway = "import { startGateway } from '../../gateway/src/start.js';\nexport const x = startGateway;\n";
    assert.deepEqual(await rulesFor('lib/process/run.ts', gateway), ['import-x/no-restricted-paths']);
    const script = "import { startPlatform } from '../../../test/helpers/platform.js';\nexport const x = startPlatform;\n";
    assert.deepEqual(await rulesFor('services/quota/src/main.ts', script), ['import-x/no-restricted-paths']);
    const inTest = "import { startGateway } from '../../gateway/src/start.js';\nexport const x = startGateway;\n";
    assert.deepEqual(await rulesFor('test/helpers/platform.ts', inTest), [], 'tests may import anything');
  });

  it('an import cycle is refused', async () => {
    // lib/grpc/server.ts imports lib/metrics/grpc.ts; the reverse import closes a cycle.
    const back = "import { createGrpcServer } from '../grpc/server.js';\nexport const x = createGrpcServer;\n";
    assert.deepEqual(await rulesFor('lib/metrics/grpc.ts', back), ['import-x/no-cycle']);
  });

  it('a floating promise and a non-exhaustive switch over a union are refused', async () => {
    const floating = 'export async function f(): Promise<void> {}\nf();\n';
    assert.deepEqual(await rulesFor('lib/process/run.ts', floating), ['@typescript-eslint/no-floating-promises']);
    const inexhaustive =
      "export function f(s: 'a' | 'b'): number {\n  switch (s) {\n    case 'a':\n      return 1;\n  }\n  return 0;\n}\n";
    assert.deepEqual(await rulesFor('lib/process/run.ts', inexhaustive), ['@typescript-eslint/switch-exhaustiveness-check']);
  });
});
