/**
 * `npm run demo` end to end: the compiled demo (dist/demo/main.js) starts a directory node, two
 * makers and a taker as separate `onionmc` processes on loopback in testing mode (docs/protocol.md §8.4) and
 * exits 0 with a final `demo OK` line; then again with `--directory` against a directory node
 * this test started itself, which must have relayed the demo's traffic.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../src/demo/cluster.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The compiled demo and CLI (`npm test` builds them first). */
const DEMO_PATH = fileURLToPath(new URL('../../dist/demo/main.js', import.meta.url));
const CLI_PATH = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** The demo's own steps time out after 20 s; it normally takes about 2 s. */
const DEMO_TIMEOUT_MS = 30_000;

/** Runs the demo to completion (killed after {@link DEMO_TIMEOUT_MS}). */
function runDemo(
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO_PATH, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEMO_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last non-empty line of `text`. */
function lastLine(text: string): string {
  return text.trimEnd().split('\n').at(-1) ?? '';
}

describe('the demo', () => {
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    if (!existsSync(DEMO_PATH) || !existsSync(CLI_PATH)) {
      await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
    }
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('runs its own directory node, two makers and a taker, and ends with "demo OK"', async () => {
    const result = await runDemo([]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(lastLine(result.stdout)).toMatch(/^demo OK: 1 directory node, 2 makers, 1 taker; /);
    expect(result.stdout).toContain('3 signed offers verified');
  }, 40_000);

  it('runs against a directory node given with --directory, which relays its traffic', async () => {
    cluster = await Cluster.create('onionmc-demo-test-');
    const directory = await cluster.start({ name: 'directory', role: 'directory' });
    const info = (await directory.api.call('GET', '/v1/info')) as { location: string };
    expect(info.location).toBe(`127.0.0.1:${directory.servingPort}`);

    const result = await runDemo(['--directory', info.location]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`using directory nodes ${info.location}`);
    expect(lastLine(result.stdout)).toMatch(/^demo OK: 1 external directory node\(s\), /);

    // The demo's makers, taker and messages went through our directory node.
    const after = (await directory.api.call('GET', '/v1/info')) as {
      counters: Record<string, number>;
    };
    expect(after.counters['relayed.pubmsg'] ?? 0).toBeGreaterThanOrEqual(4);
    expect(after.counters['relayed.privmsg'] ?? 0).toBeGreaterThanOrEqual(6);
    expect(await cluster.stopNode('directory')).toBe(0);
  }, 40_000);

  it('Cluster.start fails at once, with the log tail, when the node process exits', async () => {
    cluster ??= await Cluster.create('onionmc-demo-test-');
    const startedAt = Date.now();
    const failure: unknown = await cluster
      .start({ name: 'broken', role: 'taker', directories: ['127.0.0.1:notaport'] })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(failure).toMatchObject({ code: 'ERR_CLOSED' });
    const message = (failure as Error).message;
    expect(message).toContain('broken exited with 2');
    expect(message).toContain('directory_nodes');
    // Well before Cluster's 15 s start deadline.
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });
});
