/**
 * The text `npm start` prints once the platform answers: base URLs, where the demo key is (never
 * the key itself: this output is the log stream), a curl line that reads the key from its file
 * (and one for the demo `embeddings` endpoint), the metrics endpoints, and a plain warning when
 * the tiny test model is what is being served.
 */
import path from 'node:path';

/** The model name the inference worker reports when it serves its generated tiny fallback model. */
export const TINY_TEST_MODEL = 'xerotier-tiny-successor';

export interface BannerInfo {
  root: string;
  gatewayPort: string;
  gatewayGrpcPort: string;
  baseDomain: string;
  demoKeyFile: string;
  /** Process name → its Prometheus port. */
  metrics: ReadonlyArray<{ name: string; port: string }>;
  /** What the inference worker reports serving, when it could be asked. */
  model: { name: string; engine: string } | undefined;
}

/** A path as the user can type it: relative to the repository root when inside it. */
export function displayPath(root: string, file: string): string {
  const relative = path.relative(root, path.resolve(root, file));
  const shown = relative.startsWith('..') || path.isAbsolute(relative) ? path.resolve(root, file) : relative;
  return /^[\w./-]+$/.test(shown) ? shown : `'${shown.replaceAll("'", `'\\''`)}'`;
}

export function formatBanner(info: BannerInfo): string {
  const base = `http://127.0.0.1:${info.gatewayPort}/demo/chat/v1`;
  const embeddings = `http://127.0.0.1:${info.gatewayPort}/demo/embeddings/v1`;
  const keyFile = displayPath(info.root, info.demoKeyFile);
  const lines = [
    '',
    '  Xerotier platform is up.',
    `  Base URL (path-based): ${base}`,
    `  Base URL (DNS-based):  http://chat.demo.${info.baseDomain}:${info.gatewayPort}/v1`,
    `  gRPC (internal):       127.0.0.1:${info.gatewayGrpcPort} (xerotier.gateway.v1.ChatService)`,
    `  Demo API key:          in ${keyFile} (printed nowhere else)`,
  ];
  if (info.model?.name === TINY_TEST_MODEL) {
    lines.push(
      `  Model:                 ${TINY_TEST_MODEL}, the built-in TINY TEST MODEL: the configured LLAMA_MODEL could not`,
      '                         be loaded, so the output is a character pattern, not language (LLAMA_FALLBACK_TINY=false turns this off)',
    );
  } else if (info.model) {
    lines.push(`  Model:                 ${info.model.name} (${info.model.engine})`);
  }
  if (info.metrics.length > 0) {
    lines.push(`  Metrics (Prometheus):  ${info.metrics.map((m) => `${m.name} http://127.0.0.1:${m.port}/metrics`).join(', ')}`);
  }
  lines.push(
    '',
    `  curl ${base}/chat/completions -H "Authorization: Bearer $(cat ${keyFile})" -H "Content-Type: application/json" \\`,
    `    -d '{"model":"${info.model?.name ?? 'smollm2-135m-instruct'}","messages":[{"role":"user","content":"Hello!"}]}'`,
    '',
    '  Embeddings (endpoint `embeddings`, same key):',
    `  curl ${embeddings}/embeddings -H "Authorization: Bearer $(cat ${keyFile})" -H "Content-Type: application/json" \\`,
    `    -d '{"model":"smollm2-135m-instruct","input":["Hello!","Bonjour !"]}'`,
    '',
    '  Ctrl-C stops everything.',
    '',
  );
  return lines.join('\n');
}
