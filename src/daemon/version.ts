/**
 * onionmc's version: the `version` of the package.json two folders up (the same from src/daemon/
 * under vitest and from dist/daemon/ when installed).
 */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The package version, e.g. `0.1.0`; `unknown` when package.json cannot be read. */
export const VERSION: string = readVersion();
