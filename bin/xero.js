#!/usr/bin/env node
// `xero` as a command (package.json "bin", so `npx xero …` works in the checkout): runs the
// TypeScript CLI in bin/xero.ts through tsx's loader, without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./xero.ts');
