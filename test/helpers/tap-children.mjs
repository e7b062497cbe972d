// Loaded into every test process (package.json, tap's node-arg), after tap's process tracker
// (@tapjs/processinfo). The tracker rides along into every process a test starts: it puts itself
// back into NODE_OPTIONS at each spawn, records every module the child loads (reading each file
// again, for source maps and line lengths) and collects V8 coverage there. The runbooks, the
// sandbox's programs (the tofu stand-in once per command, the beersystem pods), kubectl wrappers:
// hundreds of processes a run, each paying a loader thread and the tracking (~0.1 s of CPU, more
// with coverage). None of them counts: coverage is reported for lib/ from the test processes
// themselves (test/helpers/run-cli.ts withoutCoverage says why child coverage is not wanted).
// So a test's children start without the tracker; the test process keeps it.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.resolve('@tapjs/processinfo'));
const processOnSpawn = require('process-on-spawn');

const TRACKER = /@tapjs[\\/]processinfo/;

// Listeners run in the order they were added: the tracker's (added when it loaded) runs first,
// so this one sees, and undoes, what it put into the child's environment.
processOnSpawn.addListener((child) => {
  const env = { ...child.env };
  const options = (env.NODE_OPTIONS ?? '')
    .split(/\s+/)
    .filter((arg) => arg && !TRACKER.test(arg))
    .join(' ');
  if (options) env.NODE_OPTIONS = options;
  else delete env.NODE_OPTIONS;
  for (const name of Object.keys(env)) {
    if (name.startsWith('_TAPJS_PROCESSINFO_')) delete env[name];
  }
  child.env = env;
});
