import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatewayProcessCount, loadGatewayConfig } from './config.js';

describe('GATEWAY_PROCESSES', () => {
  it('defaults to one process (unset or empty)', () => {
    assert.equal(gatewayProcessCount(loadGatewayConfig({}).GATEWAY_PROCESSES, 8), 1);
    assert.equal(gatewayProcessCount(loadGatewayConfig({ GATEWAY_PROCESSES: '' }).GATEWAY_PROCESSES, 8), 1);
  });

  it('takes an integer from 1, or auto = the cores available', () => {
    assert.equal(gatewayProcessCount(loadGatewayConfig({ GATEWAY_PROCESSES: '4' }).GATEWAY_PROCESSES, 2), 4);
    assert.equal(gatewayProcessCount(loadGatewayConfig({ GATEWAY_PROCESSES: ' 1 ' }).GATEWAY_PROCESSES, 2), 1);
    assert.equal(gatewayProcessCount(loadGatewayConfig({ GATEWAY_PROCESSES: 'auto' }).GATEWAY_PROCESSES, 6), 6);
    assert.equal(gatewayProcessCount(loadGatewayConfig({ GATEWAY_PROCESSES: 'AUTO' }).GATEWAY_PROCESSES, 1), 1);
  });

  it('refuses anything else, naming the variable', () => {
    for (const bad of ['0', '-1', '1.5', 'two', '2x', '10000']) {
      assert.throws(() => loadGatewayConfig({ GATEWAY_PROCESSES: bad }), /GATEWAY_PROCESSES/, `"${bad}"`);
    }
  });
});
