// `node --import ./lib/ts-loader/register.mjs program.ts`: how this project's TypeScript runs
// (the runbooks' shebang line, the tests, the tools). See hooks.mjs for what it does.
import './wasm-baseline.mjs';
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
// Stack traces name the .ts line, as they would under tsc's output with source maps.
process.setSourceMapsEnabled(true);
