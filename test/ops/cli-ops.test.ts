/**
 * The daemon as an operator runs it (compiled CLI): one-line start failures with their exit codes
 * and a last "onionmc stopped" log line (issue 9 point 8), root refused unless allowed (point 3),
 * the data directory layout (point 1), the safe API socket (point 2), `--version` (point 4).
 * Testing mode only: loopback and unix sockets in a temporary folder.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { pollUntil } from '../../src/demo/cluster.js';
import { ChildListener } from '../helpers/ports.js';
import {
  CLI_PATH,
  envWithoutAllowRoot,
  logLines,
  onionmc,
  startDaemon,
  writeTestingConfig,
  type RunningDaemon,
} from './cli-helpers.js';

const ROOT = path.dirname(path.dirname(path.dirname(CLI_PATH)));
const isRoot = process.getuid?.() === 0;

describe('onionmc as an operator runs it', { timeout: 90_000 }, () => {
  let dir = '';
  const daemons: RunningDaemon[] = [];
  /** The serving socket of the config last written in each folder (bound on port 0 by us). */
  const listeners = new Map<string, ChildListener>();
  const listenerOf = (datadir: string): ChildListener => {
    const listener = listeners.get(datadir);
    if (listener === undefined) throw new Error(`no config written in ${datadir}`);
    return listener;
  };

  /** A testing-mode directory node config in `datadir/joinmarket.cfg`. */
  const directoryConfig = async (
    datadir: string,
    extra: Record<string, string> = {},
  ): Promise<string> => {
    const listener = await ChildListener.listen();
    listeners.set(datadir, listener);
    const port = listener.port;
    return writeTestingConfig(path.join(datadir, 'joinmarket.cfg'), {
      onion_serving_port: String(port),
      directory_nodes: `127.0.0.1:${port}`,
      ...extra,
    });
  };

  const waitForApi = async (daemon: RunningDaemon, socket: string): Promise<ApiClient> => {
    const api = new ApiClient({ kind: 'unix', path: socket });
    await pollUntil(
      `the API on ${socket}`,
      async () => {
        if (daemon.child.exitCode !== null)
          throw new Error(`onionmc exited ${daemon.child.exitCode}: ${daemon.stderr()}`);
        return (await api.request('GET', '/health')).status === 200 ? true : undefined;
      },
      15_000,
    );
    return api;
  };

  const stop = async (daemon: RunningDaemon): Promise<number | null> => {
    daemon.child.kill('SIGTERM');
    return daemon.exited;
  };

  beforeAll(async () => {
    if (!existsSync(CLI_PATH)) await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-ops-'));
  });

  afterAll(async () => {
    for (const daemon of daemons) if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    for (const listener of listeners.values()) await listener.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const result = await onionmc(['--version']);
    expect(result).toMatchObject({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it.runIf(isRoot)(
    'as root: run, directory init, send and joinmarketd are refused (exit 2) unless allowed; read-only commands are not',
    async () => {
      const datadir = path.join(dir, 'root');
      await directoryConfig(datadir);
      const env = envWithoutAllowRoot();
      for (const args of [
        ['run', '--datadir', datadir],
        ['directory', 'init', '--datadir', datadir],
        ['send', '--datadir', datadir, '--pubmsg', '!orderbook'],
        ['joinmarketd', '--port', '0'],
      ]) {
        const refused = await onionmc(args, { env });
        expect(refused.code).toBe(2);
        const lines = refused.stderr.trimEnd().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(
          /^onionmc: refusing to run as root: .*dedicated user.*--allow-root.*ONIONMC_ALLOW_ROOT=1/,
        );
      }
      // config check is read-only: it runs as root.
      expect((await onionmc(['config', 'check', '--datadir', datadir], { env })).code).toBe(0);
      // The environment variable allows it (the daemon starts; stopped right after).
      const allowed = startDaemon(
        ['--datadir', datadir],
        envWithoutAllowRoot({ ONIONMC_ALLOW_ROOT: '1' }),
        listenerOf(datadir),
      );
      daemons.push(allowed);
      await waitForApi(allowed, path.join(datadir, 'onionmc.sock'));
      expect(await stop(allowed)).toBe(0);
    },
  );

  it('the data directory: ~/.joinmarket by default holds joinmarket.cfg and the API socket', async () => {
    const home = path.join(dir, 'home');
    const datadir = path.join(home, '.joinmarket');
    await directoryConfig(datadir);
    const daemon = startDaemon(
      ['--allow-root'],
      { ...process.env, HOME: home },
      listenerOf(datadir),
    );
    daemons.push(daemon);
    const socket = path.join(datadir, 'onionmc.sock');
    const api = await waitForApi(daemon, socket);
    expect(await api.call('GET', '/v1/info')).toMatchObject({
      role: 'directory',
      state: 'running',
    });
    // The client commands find it the same way.
    const info = await onionmc(['info', '--json'], { env: { ...process.env, HOME: home } });
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ role: 'directory' });
    expect(await stop(daemon)).toBe(0);
    // --config overrides the file, --datadir the folder; a datadir is created 0700.
    const other = path.join(dir, 'other-datadir');
    const file = await directoryConfig(path.join(dir, 'elsewhere'));
    const second = startDaemon(
      ['--datadir', other, '--config', file],
      undefined,
      listenerOf(path.join(dir, 'elsewhere')),
    );
    daemons.push(second);
    await waitForApi(second, path.join(other, 'onionmc.sock'));
    expect((await fs.stat(other)).mode & 0o777).toBe(0o700);
    expect(await stop(second)).toBe(0);
  });

  it('the API socket: 0660, a live socket and a regular file refused (exit 3, nothing removed), a stale socket replaced', async () => {
    const datadir = path.join(dir, 'socket');
    await directoryConfig(datadir);
    const socket = path.join(datadir, 'onionmc.sock');
    const first = startDaemon(['--datadir', datadir], undefined, listenerOf(datadir));
    daemons.push(first);
    const api = await waitForApi(first, socket);
    expect((await fs.stat(socket)).mode & 0o777).toBe(0o660);

    // A second daemon on the live socket: refused, and the first keeps its API.
    const secondDatadir = path.join(dir, 'socket2');
    await directoryConfig(secondDatadir);
    const second = await onionmc(['run', '--datadir', secondDatadir, '--api', `unix:${socket}`]);
    expect(second.code).toBe(3);
    expect(second.stderr).toBe(
      `onionmc: another onionmc serves ${socket}: stop it first, or give this one another API path (--api, --datadir)\n`,
    );
    expect(logLines(second.stdout).at(-1)).toMatchObject({ msg: 'onionmc stopped: start failed' });
    expect((await api.request('GET', '/health')).status).toBe(200);

    // A regular file: refused and left alone.
    const file = path.join(dir, 'not-a-socket');
    await fs.writeFile(file, 'keep me');
    const onFile = await onionmc(['run', '--datadir', secondDatadir, '--api', `unix:${file}`]);
    expect(onFile.code).toBe(3);
    expect(onFile.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(onFile.stderr).toContain(`${file} is a regular file, not a socket`);
    expect(await fs.readFile(file, 'utf8')).toBe('keep me');

    // A stale socket (its daemon killed without cleanup) is replaced.
    first.child.kill('SIGKILL');
    await first.exited;
    expect((await fs.lstat(socket)).isSocket()).toBe(true);
    // The same datadir and API socket; a fresh serving socket (the config is rewritten with it).
    await directoryConfig(datadir);
    const third = startDaemon(['--datadir', datadir], undefined, listenerOf(datadir));
    daemons.push(third);
    await waitForApi(third, socket);
    expect(logLines(third.stdout()).some((l) => l.msg === 'replaced a stale API socket')).toBe(
      true,
    );
    expect(await stop(third)).toBe(0);
  });

  it.runIf(isRoot)('api_socket_group gives the socket a group, mode 0660', async () => {
    const datadir = path.join(dir, 'group');
    await directoryConfig(datadir, { api_socket_group: '1' });
    const daemon = startDaemon(['--datadir', datadir], undefined, listenerOf(datadir));
    daemons.push(daemon);
    const socket = path.join(datadir, 'onionmc.sock');
    await waitForApi(daemon, socket);
    const stat = await fs.stat(socket);
    expect(stat.gid).toBe(1);
    expect(stat.mode & 0o777).toBe(0o660);
    expect(await stop(daemon)).toBe(0);
  });

  it('start failures: one line, exit code, no stack trace; the last log line says stopped and why; the unused key is named', async () => {
    const datadir = path.join(dir, 'failures');
    await directoryConfig(datadir, { some_unknown_key: 'x' });
    // A TCP API port that is taken: exit 3.
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    const result = await onionmc(['run', '--datadir', datadir, '--api', `127.0.0.1:${port}`]);
    busy.close();
    expect(result.code).toBe(3);
    expect(result.stderr).toBe(
      `onionmc: the local API cannot listen on 127.0.0.1:${port} (EADDRINUSE): another program uses it\n`,
    );
    const lines = logLines(result.stdout);
    expect(lines.at(-1)).toMatchObject({
      msg: 'onionmc stopped: start failed',
      reason: expect.stringContaining('EADDRINUSE') as unknown,
    });
    const unused = lines.find((l) => l.msg.startsWith('config key not used'));
    expect(unused).toMatchObject({ unusedKey: 'some_unknown_key' });
    expect(result.stdout).not.toContain('[redacted]');
    // No line repeats a key (pino child bindings and call fields of the same name).
    for (const line of result.stdout.split('\n').filter((l) => l.startsWith('{'))) {
      const keys = [...line.matchAll(/"([^"]+)":/g)].map((m) => m[1]);
      const top = keys.filter((k, i) => keys.indexOf(k) !== i);
      expect(top, line).toEqual([]);
    }
  });

  it('a clean stop: the last log line is "onionmc stopped" with the signal', async () => {
    const datadir = path.join(dir, 'clean');
    await directoryConfig(datadir);
    const daemon = startDaemon(['--datadir', datadir], undefined, listenerOf(datadir));
    daemons.push(daemon);
    await waitForApi(daemon, path.join(datadir, 'onionmc.sock'));
    expect(await stop(daemon)).toBe(0);
    expect(logLines(daemon.stdout()).at(-1)).toMatchObject({
      msg: 'onionmc stopped',
      reason: 'signal SIGTERM',
      exitCode: 0,
    });
    expect(daemon.stderr()).toBe('');
  });
});
