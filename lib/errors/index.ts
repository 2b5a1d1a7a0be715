export * from './app-error.js';
export { toHttpError, type HttpError, type OpenAIErrorBody } from './http.js';
export { toServerError, fromClientError, ERROR_CODE_TRAILER } from './grpc.js';
