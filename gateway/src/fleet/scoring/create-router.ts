/** Builds the gateway's router from its configuration (the composition root calls this once). */
import type { GatewayConfig } from '../../config.js';
import { createOracle, readOracleFile } from './oracle.js';
import { createRouter, type Router } from './router.js';
import { routingSettings } from './settings.js';

export function routerFromConfig(config: GatewayConfig): Router {
  const settings = routingSettings(config);
  const oracle =
    settings.strategy === 'oracle' && settings.oracleFile !== undefined ? createOracle(readOracleFile(settings.oracleFile)) : undefined;
  return createRouter({ settings, random: Math.random, now: () => performance.now(), oracle });
}
