/**
 * The two ways an endpoint's model cannot be served (gateway routing, gateway/src/fleet/eligibility.ts):
 * the platform does not know the model at all (404, final), or knows it but no worker that may
 * serve this request serves it now (503, retryable).
 */
import { AppError } from './app-error.js';

export const modelNotFound = (model: string): AppError =>
  new AppError('not_found', `The model '${model}' is not served by this platform.`, { code: 'model_not_found', retryable: false });

export const modelUnavailable = (model: string, retryAfterSeconds = 5): AppError =>
  new AppError('unavailable', `No inference worker serves the model '${model}' for this endpoint right now; retry shortly.`, {
    code: 'model_unavailable',
    retryAfterSeconds,
  });
