// Every runbook as an operator starts it: `./runbooks/X.mts --help` through the shell, so its
// `#!/bin/sh` + `//bin/true; exec node …` lines are what runs it (an automatic import sort once
// moved an import above them). Its --help loads only what it prints: no Redis client, no
// histogram, no Kubernetes client, no report code, no zx (those load inside the steps that use
// them, zx with the first command run).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO, withoutCoverage } from '../helpers/run-cli.ts';

const RUNBOOKS = readdirSync(join(REPO, 'runbooks'))
  .filter((f) => f.endsWith('.mts'))
  .sort();
const TRACER = join(REPO, 'test', 'fixtures', 'trace-imports.mjs');
const NOT_FOR_HELP = [
  'node_modules/ioredis/',
  'node_modules/hdr-histogram-js/',
  'node_modules/zx/',
  'node_modules/@kubernetes/client-node/',
  'node_modules/.cache/redis-shared-runbooks/client-node-',
  'lib/redis/latency-histogram.ts',
  'lib/phases/report.ts',
  'lib/phases/report-html.ts',
  'lib/phases/report-files.ts',
];

interface HelpRun {
  code: number;
  stdout: string;
  stderr: string;
  loaded: string;
}

function helpThroughShell(file: string, trace: string): Promise<HelpRun> {
  const env = withoutCoverage({ TRACE_IMPORTS: trace });
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import ${TRACER}`.trim();
  return new Promise((resolve) => {
    execFile(
      '/bin/sh',
      ['-c', `./runbooks/${file} --help`],
      { cwd: REPO, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        let loaded = '';
        try {
          loaded = readFileSync(trace, 'utf8');
        } catch {}
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr, loaded });
      },
    );
  });
}

const scratch = mkdtempSync(join(tmpdir(), 'runbook-help-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
const runs = new Map<string, HelpRun>();
for (const file of RUNBOOKS) runs.set(file, await helpThroughShell(file, join(scratch, file)));

t.test('every runbook starts through its shebang line', async (t) => {
  t.ok(RUNBOOKS.length >= 8, `${RUNBOOKS.join(', ')}`);
  for (const file of RUNBOOKS) {
    const [first, second] = readFileSync(join(REPO, 'runbooks', file), 'utf8').split('\n');
    t.equal(first, '#!/bin/sh', `${file}: line 1`);
    t.match(
      second,
      /^\/\/bin\/true; exec node --import .*lib\/ts-loader\/register\.mjs" "\$0" "\$@"$/,
    );
    const run = runs.get(file)!;
    t.equal(run.code, 0, `${file} --help exits 0`, { stderr: run.stderr });
    t.match(run.stdout, /usage: \.\/runbooks\//i, `${file} --help prints its usage`);
    t.equal(run.stderr, '', `${file} --help writes nothing to stderr`);
  }
});

t.test('--help loads no Redis client, histogram, Kubernetes client or report code', async (t) => {
  for (const file of RUNBOOKS) {
    const loaded = runs.get(file)!.loaded;
    t.match(loaded, `runbooks/${file}`, `${file}: the trace saw the runbook load`);
    for (const heavy of NOT_FOR_HELP) {
      t.notOk(loaded.includes(heavy), `${file} --help does not load ${heavy}`);
    }
  }
});
