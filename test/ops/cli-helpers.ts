/**
 * Running the compiled `onionmc` (dist/cli/main.js) in tests: to completion, or as a daemon whose
 * API is awaited. Every child is killed at the end of its suite.
 */
import type { ChildListener } from '../helpers/ports.js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled CLI (`npm test` builds it first; run `npm run build` before these tests). */
export const CLI_PATH = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** What a finished command printed and how it exited. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without the root allowance vitest.config.ts sets (to test the refusal). */
export function envWithoutAllowRoot(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.ONIONMC_ALLOW_ROOT;
  return { ...env, ...extra };
}

/** Runs `onionmc ...args` to completion (killed after 20 s). */
export function onionmc(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A daemon started with `onionmc run ...args`, its output collected. */
export interface RunningDaemon {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code once it exits. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `onionmc run ...args`; with `listener`, the daemon accepts peers on that socket
 * (`--listen-fd 3`) instead of binding the configured serving port.
 */
export function startDaemon(
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
  listener?: ChildListener,
): RunningDaemon {
  const child =
    listener !== undefined
      ? listener.spawn(process.execPath, [CLI_PATH, 'run', ...args], { env: env ?? process.env })
      : spawn(process.execPath, [CLI_PATH, 'run', ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: env ?? process.env,
        });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      resolve(code);
    });
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** JSON log lines of a daemon's stdout. */
export function logLines(stdout: string): { msg: string; [key: string]: unknown }[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string });
}

/** Writes a testing-mode config (regtest_count 1,1) into `file`. */
export async function writeTestingConfig(
  file: string,
  lines: Readonly<Record<string, string>>,
): Promise<string> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const body = Object.entries({ type: 'onion', regtest_count: '1,1', ...lines }).map(
    ([k, v]) => `${k} = ${v}`,
  );
  await fs.writeFile(
    file,
    ['[BLOCKCHAIN]', 'network = testnet', '', '[MESSAGING:onion]', ...body, ''].join('\n'),
  );
  return file;
}
