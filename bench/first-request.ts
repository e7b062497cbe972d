// CPU of a process's first Kubernetes API request through client-node (as every runbook makes),
// with lib/ts-loader/wasm-baseline.mjs (how the runbooks start) against without, interleaved: undici's
// WebAssembly HTTP parser is compiled at that request.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { clientNodeBundlePath } from '../lib/cluster/client-node.ts';
import { REPO_ROOT } from '../lib/config.ts';
import { cpuSeconds, median } from './measure.ts';

const TARGET = 0.85;
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(values.rounds);

// The API server stand-in runs in its own process: the measured runs are started synchronously.
const server = spawn(
  process.execPath,
  [
    '-e',
    `require('node:http').createServer((q, s) => {
      s.setHeader('content-type', 'application/json');
      s.end('{"kind":"NamespaceList","apiVersion":"v1","metadata":{},"items":[]}');
    }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`,
  ],
  { stdio: ['ignore', 'pipe', 'ignore'] },
);
const started = once(server.stdout!, 'data') as Promise<[Buffer]>;
const exited = once(server, 'exit').then(([code]) => {
  throw new Error(`the API server stand-in exited (${code}) before it listened`);
});
const [port] = await Promise.race([started, exited]);
const url = `http://127.0.0.1:${port.toString().trim()}`;

const request = `
const k = await import(${JSON.stringify(pathToFileURL(clientNodeBundlePath()).href)});
const kc = new k.KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'c', server: ${JSON.stringify(url)}, skipTLSVerify: true }],
  users: [{ name: 'u' }],
  contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
  currentContext: 'x',
});
await kc.makeApiClient(k.CoreV1Api).listNamespace();`;
const baseline = `import ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'lib', 'ts-loader', 'wasm-baseline.mjs')).href)};`;

const cpuOf = (code: string) =>
  cpuSeconds([process.execPath, '--input-type=module', '-e', code], REPO_ROOT);

const samples = { baseline: [] as number[], optimizing: [] as number[] };
try {
  for (let i = 0; i < rounds; i++) {
    samples.baseline.push(cpuOf(baseline + request));
    samples.optimizing.push(cpuOf(request));
  }
} finally {
  server.kill();
}
const [b, o] = [median(samples.baseline), median(samples.optimizing)];
const ratio = b / o;
console.log(`rounds                 ${rounds}`);
console.log(`V8's default compilers ${o.toFixed(2)} s CPU (median)`);
console.log(`Liftoff only           ${b.toFixed(2)} s CPU (median)`);
console.log(
  `ratio                  ×${ratio.toFixed(2)} (target ≤ ${TARGET}: ${ratio <= TARGET ? 'met' : 'MISSED'})`,
);
process.exitCode = ratio <= TARGET ? 0 : 1;
