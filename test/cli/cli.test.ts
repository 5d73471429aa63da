/**
 * The compiled `onionmc` command (dist/cli/main.js) as an operator runs it: exit codes (0 clean
 * stop, 1 runtime failure, 2 configuration error), configuration problems on stderr, `run` of a
 * testing-mode directory node (docs/protocol.md §8.4) stopped by SIGTERM, and `directory init` (docs/protocol.md §8.2).
 * Nothing here talks to anything but 127.0.0.1 and unix sockets in a temporary folder.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { pollUntil } from '../helpers/poll.js';
import { ChildListener } from '../helpers/ports.js';
import { SECRET_KEY_FILE } from '../../src/tor/onion-key.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The compiled CLI (`npm test` builds it first). */
const CLI_PATH = path.join(ROOT, 'dist/cli/main.js');
/** How long a started node may take to serve its API, and a stopped one to exit. */
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `onionmc ...args` to completion (killed after 15 s) and collects its output. */
function onionmc(args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Resolves with the exit code and signal of `child` once it exits. */
function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

/** A config file: `[BLOCKCHAIN] network = testnet` and an onion section with `lines`. */
async function writeConfig(
  dir: string,
  name: string,
  lines: Readonly<Record<string, string>>,
): Promise<string> {
  const file = path.join(dir, `${name}.cfg`);
  const body = Object.entries({ type: 'onion', ...lines }).map(([k, v]) => `${k} = ${v}`);
  await fs.writeFile(
    file,
    ['[BLOCKCHAIN]', 'network = testnet', '', '[MESSAGING:onion]', ...body, ''].join('\n'),
  );
  return file;
}

describe('the onionmc command', () => {
  let dir = '';
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(CLI_PATH)) {
      await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
    }
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-cli-'));
  });

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (dir !== '') await fs.rm(dir, { recursive: true, force: true });
  });

  it('--help exits 0 and lists the commands', async () => {
    const result = await onionmc(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: onionmc');
    expect(result.stdout).toMatch(/^\s+run\b/m);
    expect(result.stdout).toMatch(/^\s+directory\b/m);
    const runHelp = await onionmc(['run', '--help']);
    expect(runHelp.code).toBe(0);
    for (const option of ['--config', '--maker', '--api']) expect(runHelp.stdout).toContain(option);
  });

  it('a config with several mistakes exits 2 and lists every problem with file, section, key and value', async () => {
    const file = path.join(dir, 'broken.cfg');
    await fs.writeFile(
      file,
      [
        '[BLOCKCHAIN]',
        'network = moonnet',
        '',
        '[MESSAGING:onion]',
        'type = onion',
        'onion_serving_port = 99999',
        'directory_nodes = 127.0.0.1:5222',
        'regtest_count = 1,1',
        'nick_auth_mode = sometimes',
        'heartbeat_sweep_interval = soon',
        'api = 192.0.2.7:8080',
        '',
      ].join('\n'),
    );
    const result = await onionmc(['run', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('onionmc: configuration error:');
    const problems = lines.slice(1).map((line) => line.trim());
    const expected = [
      `${file}: [BLOCKCHAIN] network = "moonnet": `,
      `${file}: [MESSAGING:onion] onion_serving_port = "99999": `,
      `${file}: [MESSAGING:onion] nick_auth_mode = "sometimes": `,
      `${file}: [MESSAGING:onion] heartbeat_sweep_interval = "soon": `,
      `${file}: [MESSAGING:onion] api = "192.0.2.7:8080": `,
    ];
    for (const prefix of expected) {
      expect(problems.filter((p) => p.startsWith(prefix))).toHaveLength(1);
    }
    expect(problems).toHaveLength(expected.length);
    // Each problem says what is allowed.
    expect(problems.find((p) => p.includes('api ='))).toContain('loopback');
    expect(problems.find((p) => p.includes('onion_serving_port ='))).toContain('65535');
  });

  it('usage errors exit 2 with one line: no config in the datadir, unknown command, an --api that is not loopback, a bad --log-level', async () => {
    const datadir = path.join(dir, 'empty-datadir');
    const missing = await onionmc(['run', '--datadir', datadir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      `${path.join(datadir, 'joinmarket.cfg')}: cannot read the configuration file`,
    );
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1);
    const verbose = await onionmc(['run', '--log-level', 'verbose']);
    expect(verbose.code).toBe(2);
    expect(verbose.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(verbose.stderr).toMatch(/^onionmc: .*'verbose' is invalid/);
    expect(verbose.stderr).not.toMatch(/\n\s+at /);
    expect((await onionmc(['bogus'])).code).toBe(2);
    const exposed = await onionmc(['run', '--config', '/nonexistent.cfg', '--api', '0.0.0.0:8080']);
    expect(exposed.code).toBe(2);
    expect(exposed.stderr).toContain('host must be loopback');
  });

  it('a missing config file exits 2 naming the path', async () => {
    const file = path.join(dir, 'no-such-dir', 'joinmarket.cfg');
    for (const args of [
      ['run', '--config', file],
      ['directory', 'init', '--config', file],
    ]) {
      const result = await onionmc(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('onionmc: configuration error:');
      expect(result.stderr).toContain(`${file}: cannot read the configuration file`);
    }
  });

  it('run: a testing-mode directory node serves its API, and SIGTERM stops it with exit 0', async () => {
    // We bind the serving port and hand the socket to the daemon (--listen-fd 3).
    const listener = await ChildListener.listen();
    const servingPort = listener.port;
    const socket = path.join(dir, 'directory.sock');
    const file = await writeConfig(dir, 'directory', {
      onion_serving_host: '127.0.0.1',
      onion_serving_port: String(servingPort),
      hidden_service_dir: '',
      directory_nodes: `127.0.0.1:${servingPort}`,
      regtest_count: '1,1',
    });
    const child = listener.spawn(process.execPath, [
      CLI_PATH,
      'run',
      '--config',
      file,
      '--api',
      `unix:${socket}`,
    ]);
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = exitOf(child);

    const api = new ApiClient({ kind: 'unix', path: socket });
    await pollUntil(
      'the directory node API to answer /health',
      async () => {
        if (child.exitCode !== null) throw new Error(`onionmc exited ${child.exitCode}: ${stderr}`);
        const res = await api.request('GET', '/health');
        return res.status === 200 ? res : undefined;
      },
      START_TIMEOUT_MS,
    );
    expect(await api.call('GET', '/v1/info')).toMatchObject({
      role: 'directory',
      location: `127.0.0.1:${servingPort}`,
    });
    expect((await fs.stat(socket)).mode & 0o777).toBe(0o660);
    // Logs are JSON lines on stdout; the start line names the role and the API endpoint.
    const running = await pollUntil(
      'the "onionmc running" log line',
      () =>
        Promise.resolve(
          stdout
            .split('\n')
            .filter((line) => line.startsWith('{'))
            .map((line) => JSON.parse(line) as { msg?: string; role?: string; api?: unknown })
            .find((entry) => entry.msg === 'onionmc running'),
        ),
      START_TIMEOUT_MS,
    );
    expect(running).toMatchObject({ role: 'directory', api: { kind: 'unix', path: socket } });
    // The daemon accepts on the socket we handed it (our copy is closed).
    await new Promise<void>((resolve, reject) => {
      const peer = net.connect({ host: '127.0.0.1', port: servingPort }, () => {
        peer.destroy();
        resolve();
      });
      peer.once('error', reject);
    });

    const stopStartedAt = Date.now();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const result = await exited;
    clearTimeout(timer);
    expect(result).toEqual({ code: 0, signal: null });
    expect(Date.now() - stopStartedAt).toBeLessThan(STOP_TIMEOUT_MS);
    expect(stderr).toBe('');
    await expect(fs.stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('directory init creates a private key, prints the onion and the directory_nodes line, and is stable', async () => {
    const keyDir = path.join(dir, 'hs', 'directory');
    const file = await writeConfig(dir, 'init', {
      hidden_service_dir: keyDir,
      directory_nodes: 'satoshi2vcg5e2ept7tjkzlkpomkobqmgtsjzegg6wipnoajadissead.onion:5222',
    });
    const first = await onionmc(['directory', 'init', '--config', file]);
    expect(first.code).toBe(0);
    expect(first.stderr).toBe('');
    const onion = /^onion address: ([a-z2-7]{56}\.onion)$/m.exec(first.stdout)?.[1];
    if (onion === undefined) throw new Error(`no onion address line in:\n${first.stdout}`);
    expect(first.stdout).toMatch(
      new RegExp(`^directory_nodes = ${onion.replace('.', '\\.')}:5222$`, 'm'),
    );
    expect(first.stdout).toContain(`created onion key in ${keyDir}`);

    const keyStat = await fs.stat(path.join(keyDir, SECRET_KEY_FILE));
    expect(keyStat.isFile()).toBe(true);
    expect(keyStat.mode & 0o777).toBe(0o600);
    expect((await fs.stat(keyDir)).mode & 0o777).toBe(0o700);

    const second = await onionmc(['directory', 'init', '--config', file]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`found onion key in ${keyDir}`);
    expect(second.stdout).toContain(`onion address: ${onion}\n`);
    expect(second.stdout).toContain(`directory_nodes = ${onion}:5222\n`);
  });

  it('directory init without hidden_service_dir exits 2 naming the key', async () => {
    const file = await writeConfig(dir, 'no-hsdir', {
      hidden_service_dir: '',
      directory_nodes: 'satoshi2vcg5e2ept7tjkzlkpomkobqmgtsjzegg6wipnoajadissead.onion:5222',
    });
    const result = await onionmc(['directory', 'init', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('onionmc: configuration error:');
    expect(result.stderr).toContain(`${file}: [MESSAGING:onion] hidden_service_dir`);
  });
});
