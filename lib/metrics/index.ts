export * from './metrics.js';
export { grpcMetricsMiddleware, statusOfError } from './grpc.js';
export { httpMetricsMiddleware, routeTemplate, UNMATCHED_ROUTE, CLIENT_CLOSED_STATUS, type HttpMetricsOptions } from './http.js';
export { metricsHandler, startMetricsServer, METRICS_PATH, type MetricsServer } from './server.js';
