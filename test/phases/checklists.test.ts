// checklists/<runbook>.md mirror runbooks/<runbook>.mts one to one: every item names a step of
// its runbook (any mode), every step has an item, and each item says what "done" looks like and
// how to check it by hand. Holds for every phase checklist there is, 01 to 07, and for the day-2
// runbooks beside them (backup, restore, rotate-password).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CHECKLISTS = join(REPO, 'checklists');
const RUNBOOKS = join(REPO, 'runbooks');

interface ChecklistItem {
  step: string;
  text: string;
  line: number;
}

/** Items are `- [ ] **<step>** …` with any indented continuation lines. */
function checklistItems(markdown: string): ChecklistItem[] {
  const items: ChecklistItem[] = [];
  markdown.split('\n').forEach((line, i) => {
    const item = /^- \[[ x]\] \*\*([^*]+)\*\*(.*)$/.exec(line);
    if (item) {
      items.push({ step: (item[1] as string).trim(), text: item[2] as string, line: i + 1 });
    } else if (/^\s+\S/.test(line) && items.length > 0) {
      const last = items[items.length - 1] as ChecklistItem;
      last.text += ` ${line.trim()}`;
    }
  });
  return items;
}

interface StepLike {
  id: string;
}
interface RunbookLike {
  id: string;
  steps: readonly StepLike[];
  modes?: Record<string, { steps: readonly StepLike[] }>;
}

function stepIds(runbook: RunbookLike): string[] {
  return [
    ...runbook.steps.map((s) => s.id),
    ...Object.values(runbook.modes ?? {}).flatMap((m) => m.steps.map((s) => s.id)),
  ];
}

/** Every way a checklist and its runbook's steps can disagree, one sentence each. */
function mirrorProblems(
  runbookId: string,
  ids: readonly string[],
  items: readonly ChecklistItem[],
) {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    if (!ids.includes(item.step))
      problems.push(`line ${item.line}: ${item.step} is no step of ${runbookId}`);
    if (seen.has(item.step)) problems.push(`line ${item.line}: ${item.step} has a second item`);
    seen.add(item.step);
    if (!/Done when:/.test(item.text))
      problems.push(`line ${item.line}: ${item.step} does not say what done looks like`);
    if (!/By hand:.*`[^`]+`/.test(item.text))
      problems.push(`line ${item.line}: ${item.step} gives no manual command`);
  }
  for (const id of ids)
    if (!seen.has(id)) problems.push(`step ${id} of ${runbookId} has no checklist item`);
  return problems;
}

t.test('a checklist that names no step, misses one, or lacks done/by-hand is caught', async (t) => {
  const items = checklistItems(
    '- [ ] **P01** a. Done when: x. By hand: `true`\n- [ ] **P09** b. Done when: y.\n- [ ] **P01** c. By hand: `x`\n',
  );
  t.same(mirrorProblems('01-setup', ['P01', 'P02'], items), [
    'line 2: P09 is no step of 01-setup',
    'line 2: P09 gives no manual command',
    'line 3: P01 has a second item',
    'line 3: P01 does not say what done looks like',
    'step P02 of 01-setup has no checklist item',
  ]);
  t.same(mirrorProblems('01-setup', ['P01'], items.slice(0, 1)), []);
});

t.test('the item parser reads ids, text and continuation lines', async (t) => {
  const items = checklistItems(
    '# x\n\n- [ ] **P01** Tools. Done when: ok.\n  By hand: `kubectl version`\n- [x] **T012** Apply\nplain\n',
  );
  t.same(
    items.map((i) => [i.step, i.line]),
    [
      ['P01', 3],
      ['T012', 5],
    ],
  );
  t.match(items[0]?.text, /Done when: ok\. By hand: `kubectl version`/);
});

// Every runbook but audit.mts (it reads the log, it has no steps to mirror) has its checklist;
// alerts.md answers alerts, not a runbook.
const MIRRORED = (f: string) => f.endsWith('.mts') && f !== 'audit.mts';
const checklistFiles = readdirSync(CHECKLISTS).filter(
  (f) => f.endsWith('.md') && f !== 'alerts.md',
);

t.test('there are phase and day-2 checklists to check', async (t) => {
  t.ok(checklistFiles.length >= 8, `found ${checklistFiles.join(', ')}`);
  t.ok(checklistFiles.includes('backup.md'), 'the backup runbook is mirrored');
  t.ok(checklistFiles.includes('restore.md'), 'the restore runbook is mirrored');
  t.ok(checklistFiles.includes('rotate-password.md'), 'the rotation runbook is mirrored');
});

for (const file of checklistFiles) {
  t.test(`${file} mirrors its runbook step for step`, async (t) => {
    const base = file.replace(/\.md$/, '');
    const runbookFile = readdirSync(RUNBOOKS).find((f) => f === `${base}.mts`);
    if (!runbookFile) {
      t.fail(`checklists/${file} has no runbook runbooks/${base}.mts`);
      return;
    }
    const { runbook } = (await import(join(RUNBOOKS, runbookFile))) as { runbook: RunbookLike };
    const items = checklistItems(readFileSync(join(CHECKLISTS, file), 'utf8'));
    t.same(mirrorProblems(runbook.id, stepIds(runbook), items), [], 'no disagreement');
    t.ok(items.length > 0, 'the checklist has items');
  });
}

t.test('every runbook with steps has a checklist', async (t) => {
  const runbooks = readdirSync(RUNBOOKS).filter(MIRRORED);
  for (const f of runbooks) {
    t.ok(
      checklistFiles.includes(f.replace(/\.mts$/, '.md')),
      `runbooks/${f} has checklists/${f.replace(/\.mts$/, '.md')}`,
    );
  }
});

t.test(
  "05's checklist opens with the one-page card for the window, in the engine's own words",
  async (t) => {
    const { failureChoices } = await import('../../lib/engine/failure-choice.ts');
    const text = readFileSync(join(CHECKLISTS, '05-migrate.md'), 'utf8');
    const card = /## In the window \(one page\)\n([\s\S]*?)\n## /.exec(text)?.[1] ?? '';
    t.ok(card, 'the card is there, before the first section of steps');
    t.ok(text.indexOf('## In the window') < text.indexOf('- [ ] **P01**'), 'at the top');
    const names = failureChoices({
      stepId: 'T0xx',
      title: 'x',
      resume: 'r',
      rollback: { command: 'c', title: 't' },
    }).map((c) => c.name);
    for (const name of names) t.match(card, `**${name}**`, `the card explains "${name}"`);
    t.match(card, /Stop\*\* ends the run and \*\*beersystem stays down/);
    t.match(card, /The one question\*\* comes before T035/);
    t.match(card, /`\.\/runbooks\/05-migrate\.mts --rollback --env-file/, 'the exact rollback');
    t.match(card, /kubectl --context \$KUBE_CONTEXT get deployment/, 'how to tell where it stands');
    t.ok(card.split('\n').length <= 40, 'one page');
  },
);
