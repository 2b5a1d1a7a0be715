/** The measurement client of the platform path of bench/llama.ts: OpenAI SSE over HTTP. */
import { request, type Agent } from 'node:http';
import { REQUEST_TIMEOUT_MS, decodeRate, messagesFor, type Sample } from './measure.js';

interface Chunk {
  choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>;
  usage?: { completion_tokens?: number } | null;
  error?: { message?: string };
}

/**
 * One streaming chat completion through the gateway. TTFT ends when the socket chunk carrying the
 * first content delta reaches the client; the last token time is the finish_reason chunk; the
 * completion tokens are usage.completion_tokens (stream_options.include_usage).
 */
export function streamChat(agent: Agent, url: URL, key: string, index: number, maxTokens: number): Promise<Sample> {
  const payload = JSON.stringify({
    model: 'bench',
    messages: messagesFor(index),
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0,
    top_p: 1,
    max_tokens: maxTokens,
  });
  return new Promise<Sample>((resolve, reject) => {
    const start = performance.now();
    let tFirst: number | undefined;
    let tEnd = Number.NaN;
    let tokens = Number.NaN;
    let finish = 'none';
    let text = '';
    let buffer = '';
    let done = false;
    const req = request(
      url,
      {
        agent,
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      },
      (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (c: string) => (body += c));
          res.on('end', () => reject(new Error(`HTTP ${res.statusCode}: ${body.slice(0, 300)}`)));
          return;
        }
        res.on('data', (data: string) => {
          const now = performance.now();
          buffer += data;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            for (const line of event.split('\n')) {
              if (!line.startsWith('data: ')) continue;
              const body = line.slice(6);
              if (body === '[DONE]') {
                done = true;
                continue;
              }
              const chunk = JSON.parse(body) as Chunk;
              if (chunk.error) {
                reject(new Error(`stream error event: ${chunk.error.message ?? body}`));
                req.destroy();
                return;
              }
              const choice = chunk.choices?.[0];
              const content = choice?.delta?.content ?? '';
              if (content !== '') {
                tFirst ??= now;
                text += content;
              }
              if (choice?.finish_reason) {
                tEnd = now;
                finish = choice.finish_reason;
              }
              if (chunk.usage?.completion_tokens !== undefined) tokens = chunk.usage.completion_tokens;
            }
          }
        });
        res.on('end', () => {
          if (!done) return reject(new Error('stream ended without [DONE]'));
          resolve({ ttftMs: (tFirst ?? Number.NaN) - start, decodeTps: decodeRate(tokens, tFirst, tEnd), completionTokens: tokens, finish, text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
