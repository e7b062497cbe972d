// The runbooks load @kubernetes/client-node as one bundle that npm ci made from the installed
// package (lib/cluster/client-node.ts, script/bundle-client-node.ts): it must be there after
// the install, be the same package (the same exports, a kubeconfig read and a request signed
// alike), and give way to the package itself when it is missing or damaged.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import {
  type ClientNode,
  clientNodeBundlePath,
  clientNodeVersion,
  importClientNode,
  loadClientNode,
} from '../../lib/cluster/client-node.ts';
import { bundleClientNode } from '../../script/bundle-client-node.ts';

const KUBECONFIG = `apiVersion: v1
kind: Config
current-context: other
contexts:
- name: pinned
  context: {cluster: c, user: u}
- name: other
  context: {cluster: c, user: u}
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: token-of-u}
`;

const scratch = mkdtempSync(join(tmpdir(), 'client-node-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

const packageItself = () => import('@kubernetes/client-node') as Promise<ClientNode>;

async function signedRequest(k8s: ClientNode) {
  const file = join(scratch, 'kubeconfig');
  writeFileSync(file, KUBECONFIG);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  kc.setCurrentContext('pinned');
  const context = new k8s.RequestContext(`${kc.getCurrentCluster()?.server}/version`, 'GET');
  await kc.applySecurityAuthentication(context);
  return { server: kc.getCurrentCluster()?.server, headers: context.getHeaders() };
}

t.test('npm ci left the bundle of the installed version', async (t) => {
  const path = clientNodeBundlePath();
  t.match(
    path,
    new RegExp(`client-node-${clientNodeVersion().replaceAll('.', '\\.')}\\.min\\.mjs$`),
  );
  const bytes = readFileSync(path);
  // A non-ASCII byte anywhere makes Node decode the whole text the slow way (~0.3 s here).
  t.equal(
    bytes.findIndex((byte) => byte > 0x7f),
    -1,
    'ASCII only',
  );
  t.ok(bytes.length < 10_000_000, `without whitespace and comments (${bytes.length} bytes)`);
  const bundle = (await import(pathToFileURL(path).href)) as ClientNode;
  t.equal(typeof bundle.KubeConfig, 'function', 'it loads and has KubeConfig');
});

t.test('the runbooks get the bundle, not the package', async (t) => {
  const loaded = await loadClientNode();
  const bundle = (await import(pathToFileURL(clientNodeBundlePath()).href)) as ClientNode;
  t.equal(loaded.KubeConfig, bundle.KubeConfig, "the bundle's KubeConfig");
  t.not(loaded.KubeConfig, (await packageItself()).KubeConfig, "not the package's");
  t.equal(await loadClientNode(), loaded, 'loaded once per process');
});

t.test('the bundle is the installed package: its exports, a kubeconfig read alike', async (t) => {
  const [bundle, pkg] = [await loadClientNode(), await packageItself()];
  t.same(Object.keys(bundle).sort(), Object.keys(pkg).sort(), 'the same exports');
  const [fromBundle, fromPackage] = [await signedRequest(bundle), await signedRequest(pkg)];
  t.same(fromBundle, fromPackage, 'the same server and the same signed headers');
  t.equal(fromBundle.headers.Authorization, 'Bearer token-of-u', "the pinned context's user");
});

t.test('a missing or damaged bundle gives way to the package itself', async (t) => {
  const pkg = await packageItself();
  const missing = await importClientNode(join(scratch, 'not-there.mjs'));
  t.equal(missing.KubeConfig, pkg.KubeConfig, 'missing: the package');
  const damaged = join(scratch, 'damaged.mjs');
  writeFileSync(damaged, 'export const KubeConfig = ;\n');
  t.equal((await importClientNode(damaged)).KubeConfig, pkg.KubeConfig, 'damaged: the package');
  t.equal((await importClientNode(undefined)).KubeConfig, pkg.KubeConfig, 'no path: the package');
});

t.test(
  'script/bundle-client-node.ts writes a bundle that loads, and no partial file',
  async (t) => {
    const target = join(scratch, 'out', 'client-node-test.mjs');
    t.equal(await bundleClientNode(target), target);
    const made = (await import(pathToFileURL(target).href)) as ClientNode;
    t.equal(typeof made.Watch, 'function', 'Watch is in it (lib/cluster/kube.ts watches with it)');
    const { readdirSync } = await import('node:fs');
    t.same(readdirSync(join(scratch, 'out')), ['client-node-test.mjs'], 'only the bundle is left');
  },
);
