/**
 * `onionmc run` in Tor mode when tor cannot be used: the process exits non-zero with ONE line on
 * stderr that names what it tried (the address, socket or folder) and what fixes it (the torrc
 * line, the chmod), never advising root. No tor is needed: nothing listens where the configs
 * point (refused TCP ports on 127.0.0.1, missing unix sockets). The real tor cases (cookie file,
 * SAFECOOKIE over a control socket) are in onionmc-tor.test.ts.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildListener } from '../helpers/ports.js';
import { loadOrCreateOnionKey } from '../../src/tor/onion-key.js';

/** The compiled CLI (`npm test` builds it first). */
const CLI_PATH = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** A valid directory onion (docs/protocol.md §2.1 default list); nothing is dialed in these tests. */
const SOME_DIRECTORY = 'satoshi2vcg5e2ept7tjkzlkpomkobqmgtsjzegg6wipnoajadissead.onion:5222';

/** The serving socket of each config file, bound by us and handed to its daemon. */
const listeners = new Map<string, ChildListener>();

/**
 * A port that refuses connections: bound by the system, read back, closed. Something else could
 * take it meanwhile (the test would then fail, not hang); this port is never bound by a daemon.
 */
async function closedPort(): Promise<number> {
  const listener = await ChildListener.listen();
  await listener.close();
  return listener.port;
}

/** Runs `onionmc run --config <file> ...args`; resolves with the exit code and stderr lines. */
function run(
  config: string,
  args: string[] = [],
): Promise<{ code: number | null; stderr: string[] }> {
  const listener = listeners.get(config);
  if (listener === undefined) throw new Error(`no listener for ${config}`);
  return new Promise((resolve, reject) => {
    // The data directory (and so the default API socket) is the config's folder, not ~/.joinmarket.
    const datadir = dirname(config);
    const child = listener.spawn(process.execPath, [
      CLI_PATH,
      'run',
      '--datadir',
      datadir,
      '--config',
      config,
      ...args,
    ]);
    child.stdout.resume();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      resolve({ code, stderr: stderr.trimEnd().split('\n') });
    });
  });
}

describe('onionmc run in Tor mode: start-up errors an operator can act on', () => {
  let dir = '';
  let socksServer: net.Server | undefined;
  let socksPort = 0;

  /** Writes a Tor-mode config (regtest_count 0,0) with the given onion-section lines. */
  const config = async (name: string, lines: Record<string, string>): Promise<string> => {
    const file = join(dir, `${name}.cfg`);
    const listener = await ChildListener.listen();
    listeners.set(file, listener);
    const body = Object.entries({
      type: 'onion',
      socks5_host: '127.0.0.1',
      socks5_port: String(socksPort),
      onion_serving_host: '127.0.0.1',
      onion_serving_port: String(listener.port),
      hidden_service_dir: '',
      directory_nodes: SOME_DIRECTORY,
      regtest_count: '0,0',
      ...lines,
    }).map(([k, v]) => `${k} = ${v}`);
    await writeFile(
      file,
      ['[BLOCKCHAIN]', 'network = signet', '', '[MESSAGING:onion]', ...body, ''].join('\n'),
    );
    return file;
  };

  beforeAll(async () => {
    if (!existsSync(CLI_PATH))
      throw new Error(`${CLI_PATH} is missing: run "npm run build" first (npm test does)`);
    dir = await mkdtemp(join(tmpdir(), 'onionmc-startup-'));
    // Something that accepts connections where the SOCKS port is configured (checked at start).
    socksServer = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => socksServer!.listen(0, '127.0.0.1', resolve));
    socksPort = (socksServer.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    const server = socksServer;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    }
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('a maker whose control socket does not exist: the socket and the torrc lines', async () => {
    const socket = join(dir, 'no-such-control.sock');
    const result = await run(
      await config('maker', { tor_control_host: `unix:${socket}`, tor_control_port: '9051' }),
      ['--maker'],
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toHaveLength(1);
    expect(result.stderr[0]).toContain(
      `onionmc: cannot reach tor's control socket at unix:${socket} (ENOENT)`,
    );
    expect(result.stderr[0]).toContain(`"ControlSocket ${socket}"`);
    expect(result.stderr[0]).not.toMatch(/\broot\b|sudo/);
  });

  it('a directory node whose control port refuses: the address and the ControlPort line', async () => {
    const hiddenServiceDir = join(dir, 'dn-onion');
    const key = await loadOrCreateOnionKey(hiddenServiceDir);
    const controlPort = await closedPort();
    const file = await config('directory', {
      hidden_service_dir: hiddenServiceDir,
      directory_nodes: `${key.onionAddress}:5222`,
      tor_control_host: '127.0.0.1',
      tor_control_port: String(controlPort),
      // A directory node dials nothing: an unusable SOCKS port does not stop it (docs/protocol.md §2.2).
      socks5_host: `unix:${join(dir, 'no-such-socks.sock')}`,
    });
    const result = await run(file);
    expect(result.code).toBe(1);
    expect(result.stderr).toHaveLength(1);
    expect(result.stderr[0]).toContain(
      `onionmc: cannot reach tor's control port at 127.0.0.1:${controlPort} (ECONNREFUSED)`,
    );
    expect(result.stderr[0]).toContain(`"ControlPort ${controlPort}"`);
    expect(result.stderr[0]).not.toMatch(/\broot\b|sudo/);
  });

  it('a taker whose SOCKS socket does not exist: the socket and the SocksPort line', async () => {
    const socks = join(dir, 'no-such-socks.sock');
    const result = await run(await config('taker', { socks5_host: `unix:${socks}` }));
    expect(result.code).toBe(1);
    expect(result.stderr).toHaveLength(1);
    expect(result.stderr[0]).toContain(
      `onionmc: cannot reach tor's SOCKS proxy at unix:${socks} (ENOENT)`,
    );
    expect(result.stderr[0]).toContain(`"SocksPort unix:${socks}"`);
    expect(result.stderr[0]).not.toMatch(/\broot\b|sudo/);
  });

  it('a hidden_service_dir open to others is a configuration error (exit 2) naming the chmod', async () => {
    const hiddenServiceDir = join(dir, 'open-onion');
    const key = await loadOrCreateOnionKey(hiddenServiceDir);
    await chmod(hiddenServiceDir, 0o755);
    const result = await run(
      await config('open', {
        hidden_service_dir: hiddenServiceDir,
        directory_nodes: `${key.onionAddress}:5222`,
      }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr.join('\n')).toContain(`chmod 700 ${hiddenServiceDir}`);
  });
});
