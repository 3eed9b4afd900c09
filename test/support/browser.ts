import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (apt; never a downloaded build), headless, with no background traffic. */
export const CHROMIUM = '/usr/bin/chromium';

/** `extraArgs`: more switches, e.g. `--host-resolver-rules=…` to map a name to loopback. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}
