// The test renderer for values.yaml.tftpl and alerts.yaml: each feature it claims is rendered
// by it and, where a binary exists, by the real templatefile(), and the two must agree.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { renderTemplate, templateVariableNames } from '../../sandbox/tofu/template.ts';
import { findTerraformBinary, needsBinary, renderWithCli } from '../helpers/terraform-cli.ts';

const vars = {
  name: 'redis',
  count: 2,
  on: true,
  off: false,
  list: ['A', 'B'],
  empty: [],
  res: { requests: { cpu: '500m' } },
};

const cases: [string, string, string][] = [
  [
    'interpolation and a.b.c paths',
    `n=\${name} c=\${count} b=\${on} cpu=\${res.requests.cpu}\n`,
    'n=redis c=2 b=true cpu=500m\n',
  ],
  ['escapes stay literal', `a $\${name} and %%{ if x }\n`, `a \${name} and %{ if x }\n`],
  [
    'for loop with the strip-before marker keeps indentation',
    `l:\n%{~ for x in list }\n  - "\${x}"\n%{~ endfor }\nend\n`,
    'l:\n  - "A"\n  - "B"\nend\n',
  ],
  [
    'for loop with strip-after markers',
    `%{ for x in list ~}\n\${x}\n%{ endfor ~}\nend\n`,
    'A\nB\nend\n',
  ],
  ['an empty list renders nothing', `[%{ for x in empty }\${x},%{ endfor }]\n`, '[]\n'],
  [
    'if / else on booleans',
    '%{ if on }yes%{ else }no%{ endif } %{ if off }yes%{ else }no%{ endif }\n',
    'yes no\n',
  ],
  [
    'Prometheus templates pass through',
    'summary: "{{ $labels.instance }} {{ $value | humanize }}"\n',
    'summary: "{{ $labels.instance }} {{ $value | humanize }}"\n',
  ],
];

const bin = await findTerraformBinary();
const dir = await mkdtemp(join(tmpdir(), 'template-test-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

for (const [index, [name, template, expected]] of cases.entries()) {
  t.test(name, async (t) => {
    t.equal(renderTemplate(template, vars), expected);
  });
  t.test(`${name}: templatefile() renders the same`, needsBinary(bin), async (t) => {
    const file = join(dir, `case-${index}.tftpl`);
    await writeFile(file, template);
    t.equal(await renderWithCli(bin!, file, vars), expected, `${bin!.name} templatefile() agrees`);
  });
}

t.test('what templatefile() refuses, the renderer refuses too', async (t) => {
  t.throws(() => renderTemplate(`\${missing}`, vars), /does not contain key "missing"/);
  t.throws(() => renderTemplate(`\${list}`, vars), /cannot be interpolated/);
  t.throws(() => renderTemplate(`\${res.limits.cpu}`, vars), /no attribute "limits"/);
  t.throws(() => renderTemplate('%{ for x in list }', vars), /missing %\{ endfor \}/);
  t.throws(() => renderTemplate(`\${upper(name)}`, vars), /unsupported template expression/);
  t.throws(() => renderTemplate('%{ if count }x%{ endif }', vars), /is not a bool/);
  t.throws(() => renderTemplate(`\${name`, vars), /unterminated/);
});

t.test('templateVariableNames lists top-level names, not loop variables', async (t) => {
  t.same(
    templateVariableNames(`\${a.b} %{ for x in list }\${x}\${c}%{ endfor } %{ if on }%{ endif }`),
    ['a', 'c', 'list', 'on'],
  );
});
