// undici (Node's fetch, and the copy @kubernetes/client-node uses) parses HTTP with a WebAssembly
// build of llhttp, compiled at a process's first request. V8's optimizing compiler costs ~0.25 s
// of CPU there, in every runbook process, more than the requests themselves; its baseline
// compiler (Liftoff) alone costs about a third of that, and parses a runbook's few hundred
// responses as quickly (npm run bench:first-request). Imported before anything can make a
// request by every program this project starts (the TypeScript loader's register.mjs, the
// sandbox's launch.mjs). V8 knows the flag on Node 20, 22 and 24 (checked); on other versions it
// is not set, since V8 prints an error for a flag it does not know.
import { setFlagsFromString } from 'node:v8';

const major = Number(process.versions.node.split('.')[0]);
if (major >= 20 && major <= 24) setFlagsFromString('--liftoff-only');
