/** Self-hosted worker states as the HTTP API and the CLI name them. */
import { WorkerState } from '../../gen/xerotier/workers/v1/worker_service.js';

const names: Record<WorkerState, string> = {
  [WorkerState.WORKER_STATE_UNSPECIFIED]: 'unknown',
  [WorkerState.WORKER_STATE_ENROLLING]: 'enrolling',
  [WorkerState.WORKER_STATE_ONLINE]: 'online',
  [WorkerState.WORKER_STATE_DRAINING]: 'draining',
  [WorkerState.WORKER_STATE_OFFLINE]: 'offline',
  [WorkerState.WORKER_STATE_REVOKED]: 'revoked',
  [WorkerState.UNRECOGNIZED]: 'unknown',
};

export const workerStateName = (s: WorkerState): string => names[s];
