/**
 * Model file resolution: a local path or a model URI (`hf:user/repo/file.gguf`) becomes a file on
 * disk, downloading it into the models directory when allowed.
 *
 * node-llama-cpp retries unreachable hosts for minutes with no progress, so the download is
 * bounded here: no progress for {@link DOWNLOAD_STALL_MS} abandons it, and an offline machine
 * falls back (create-engine.ts) or fails in seconds. Any progress resets the stall timer.
 * A model that cannot be had is an AppError `unavailable` with code `model_unavailable`.
 */
import type { Logger } from 'pino';
import { resolveModelFile } from 'node-llama-cpp';
import { AppError } from '../../../../../lib/errors/app-error.js';

/** A download that makes no progress for this long is abandoned (offline machines hang in retries). */
export const DOWNLOAD_STALL_MS = 15_000;
const DOWNLOAD_LOG_INTERVAL_MS = 2000;

export interface DownloadProgress {
  downloadedBytes: number;
  totalBytes: number;
}

export interface ModelSource {
  /** Local path (absolute, or relative to `modelsDir`) or a model URI (`hf:user/repo/file.gguf`). */
  modelPath: string;
  /** Where models are looked up and downloaded to; node-llama-cpp's default when omitted. */
  modelsDir?: string | undefined;
  /** Download a missing model (only for URIs). Default false: a missing file fails start(). */
  allowDownload?: boolean | undefined;
  onDownloadProgress?: ((progress: DownloadProgress) => void) | undefined;
}

/** The model's file on disk. Rejects with the signal's reason when `signal` aborts. */
export async function resolveModel(source: ModelSource, logger: Logger, signal: AbortSignal | undefined): Promise<string> {
  const stall = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(new Error(`no download progress for ${DOWNLOAD_STALL_MS / 1000} s`)), DOWNLOAD_STALL_MS);
  };
  const report = createDownloadReporter(source, logger);
  const combined = signal ? AbortSignal.any([signal, stall.signal]) : stall.signal;
  const stalled = new Promise<never>((_, reject) => {
    combined.addEventListener('abort', () => reject(combined.reason instanceof Error ? combined.reason : new Error('aborted')), { once: true });
  });
  arm();
  try {
    return await Promise.race([
      resolveModelFile(source.modelPath, {
        download: source.allowDownload === true ? 'auto' : false,
        cli: false,
        verify: false, // verify:true hangs offline and ignores the signal
        onProgress: (status) => {
          arm();
          report(status);
        },
        ...(source.modelsDir === undefined ? {} : { directory: source.modelsDir }),
        signal: combined,
      }),
      stalled,
    ]);
  } catch (err) {
    if (signal?.aborted === true) throw err;
    throw new AppError(
      'unavailable',
      `llama-cpp: cannot resolve model "${source.modelPath}" ` +
        `(modelsDir ${source.modelsDir ?? 'default'}, download ${source.allowDownload === true ? 'allowed' : 'disabled'}): ` +
        (err instanceof Error ? err.message : String(err)),
      { code: 'model_unavailable', cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Logs download progress at most every 2 s (and at 100%); forwards every update. */
function createDownloadReporter(
  source: ModelSource,
  logger: Logger,
): (status: { totalSize: number; downloadedSize: number }) => void {
  let lastLoggedAt = 0;
  let lastPercent = -1;
  return ({ totalSize, downloadedSize }) => {
    source.onDownloadProgress?.({ downloadedBytes: downloadedSize, totalBytes: totalSize });
    const percent = totalSize > 0 ? Math.floor((downloadedSize / totalSize) * 100) : 0;
    const now = Date.now();
    if (percent === lastPercent) return;
    if (percent < 100 && now - lastLoggedAt < DOWNLOAD_LOG_INTERVAL_MS) return;
    lastLoggedAt = now;
    lastPercent = percent;
    logger.info(
      { model: source.modelPath, percent, downloadedBytes: downloadedSize, totalBytes: totalSize },
      'downloading model',
    );
  };
}
