// Every reference in the code's comments and the docs resolves inside the repository: no
// design document that is not here, every Markdown link to a file that exists. And the README
// stays a front page (≤ 10,000 characters); the manual is in docs/.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { REPO } from '../helpers/run-cli.ts';

const TEXT = /\.(ts|mts|mjs|md|tf|tftpl)$/;
const DIRS = [
  'lib',
  'runbooks',
  'sandbox',
  'script',
  'bench',
  'test',
  'examples',
  'docs',
  'terraform',
  'checklists',
  'logs',
];

function files(): string[] {
  const found = ['README.md'];
  for (const dir of DIRS) {
    if (!existsSync(join(REPO, dir))) continue;
    for (const entry of readdirSync(join(REPO, dir), { recursive: true }).map(String)) {
      if (TEXT.test(entry) && !entry.includes('node_modules') && !entry.startsWith('.run')) {
        found.push(join(dir, entry));
      }
    }
  }
  return found;
}

t.test('no file cites a design document outside the repository', async (t) => {
  // Spelt in two pieces so that this file does not name it.
  const outside = ['DESIGN', 'md'].join('.');
  const cited = files().filter((f) => readFileSync(join(REPO, f), 'utf8').includes(outside));
  t.same(cited, [], `files naming ${outside}`);
});

t.test('every relative Markdown link resolves to a file of the repository', async (t) => {
  const broken: string[] = [];
  for (const file of files().filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(join(REPO, file), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      if (!existsSync(join(REPO, dirname(file), target))) broken.push(`${file} → ${target}`);
    }
  }
  t.same(broken, []);
});

t.test('the README fits in 10,000 characters and links every docs/ page', async (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  t.ok(readme.length <= 10_000, `${readme.length} characters`);
  for (const page of readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md'))) {
    if (page === 'ip-assignments.md') continue; // 07's generated table, linked from its docs
    t.match(readme, `](docs/${page})`, `the README links docs/${page}`);
  }
});
