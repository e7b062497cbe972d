// Run as a child process by the supervisor test: starts two supervised processes, prints their
// PIDs, then waits to be killed.
import { Supervisor } from '../../sandbox/workloads/supervisor.ts';

const runDir = process.argv[2] as string;
const supervisor = new Supervisor(runDir);
const a = supervisor.spawn({
  name: 'a',
  command: 'sleep',
  args: ['infinity'],
  logFile: `${runDir}/a.log`,
});
const b = supervisor.spawn({
  name: 'b',
  command: 'sleep',
  args: ['infinity'],
  logFile: `${runDir}/b.log`,
});
process.stdout.write(`${JSON.stringify([a.pid, b.pid])}\n`);
setInterval(() => {}, 1000);
