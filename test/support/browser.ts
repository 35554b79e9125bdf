/**
 * Headless Chromium for page tests and the page benchmark: Debian's `chromium` (scripts/install-chromium.sh, or
 * $CHROMIUM_BIN) driven by playwright-core through `executablePath`; nothing is downloaded. Screenshots go to the
 * git-ignored test-artifacts/ directory, to be looked at by a person.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { repoRoot, runSetupScript } from './process';

/** Flags for a closed network: without the background ones Chromium keeps trying to reach Google's services. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--metrics-recording-only',
];

export async function chromiumBinary(): Promise<string> {
  const env = process.env['CHROMIUM_BIN'];
  if (env) return env;
  return runSetupScript('install-chromium.sh');
}

export interface RunningBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** Launch headless Chromium (playwright-core gives each launch a fresh temporary profile). */
export async function launchChromium(): Promise<RunningBrowser> {
  const browser = await chromium.launch({ executablePath: await chromiumBinary(), headless: true, args: [...CHROMIUM_ARGS] });
  return { browser, close: () => browser.close() };
}

/** Directory for a test's screenshots: test-artifacts/<name>/ at the repository root (git-ignored). */
export function artifactDir(name: string): string {
  const dir = path.join(repoRoot(), 'test-artifacts', name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
