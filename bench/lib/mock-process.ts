/**
 * Child-process entry for the benchmark's upstream: the test fixture's mock OpenAI server in its
 * own process (so it neither shares an event loop with the load generator nor with a gateway).
 * Options come as JSON in MOCK_OPTIONS; prints one line `{"port":…,"url":…}` when listening.
 * Exits on SIGTERM/SIGINT, and by itself when its parent goes away.
 */
import { startMockOpenAI, type MockOpenAIOptions } from '../../test/fixtures/mock-openai-server.js';

const options = JSON.parse(process.env['MOCK_OPTIONS'] ?? '{}') as MockOpenAIOptions;
const mock = await startMockOpenAI({ ...options, port: 0 });
process.stdout.write(`${JSON.stringify({ port: mock.port, url: mock.url })}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 2_000).unref();
  void mock.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// Orphan guard: the benchmark runner normally kills us; if it died hard, leave within ~1 s.
const parent = process.ppid;
setInterval(() => {
  try {
    process.kill(parent, 0);
  } catch {
    stop();
  }
}, 1_000).unref();
