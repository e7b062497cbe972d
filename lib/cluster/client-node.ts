// @kubernetes/client-node is some 1,700 modules; resolving and compiling them one by one costs a
// runbook about a second of CPU at every start, most of a short run. `npm ci` bundles the
// installed package into one file (script/bundle-client-node.ts: the same code, nothing left out);
// this loads that bundle when it was made from the installed version, and the package otherwise.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CACHE_DIR, installedVersion } from '../cache-dir.mjs';

export type ClientNode = typeof import('@kubernetes/client-node');

/** The installed package's version: a bundle of another version is never loaded. */
export function clientNodeVersion(): string {
  return installedVersion('@kubernetes/client-node');
}

/** Where the bundle of the installed version is (or would be) written. */
export function clientNodeBundlePath(version = clientNodeVersion()): string {
  return join(CACHE_DIR, `client-node-${version}.min.mjs`);
}

let loading: Promise<ClientNode> | undefined;

export function loadClientNode(): Promise<ClientNode> {
  loading ??= importClientNode(installedBundlePath());
  return loading;
}

function installedBundlePath(): string | undefined {
  try {
    return clientNodeBundlePath();
  } catch {
    // No readable manifest: importing the package says what is missing.
    return undefined;
  }
}

/** The bundle at `bundle` when it is there and loads; the package itself otherwise. */
export async function importClientNode(bundle: string | undefined): Promise<ClientNode> {
  if (bundle && existsSync(bundle)) {
    try {
      return (await import(pathToFileURL(bundle).href)) as ClientNode;
    } catch {
      // A damaged bundle costs the second, not the run: the package itself is the same code.
    }
  }
  return import('@kubernetes/client-node');
}
