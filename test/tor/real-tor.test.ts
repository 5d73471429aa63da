/**
 * The control client against a REAL tor, started safely: inside a fresh network namespace whose
 * only interface is `lo` (no route anywhere), with `DisableNetwork 1`, no SOCKS port and its own
 * data directory, reached through its unix control socket (reachable across namespaces through
 * the filesystem, docs/tor-test-network.md). Needs root and tor; see helpers/prereq.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { isV3OnionHostname } from '../../src/wire/location.js';
import { TorControlClient } from '../../src/tor/control-client.js';
import { quoteString } from '../../src/tor/control-reply.js';
import { loadOnionKey, loadOrCreateOnionKey } from '../../src/tor/onion-key.js';
import { addOnion, delOnion, torSupportsPow } from '../../src/tor/onion-service.js';
import { describeWithTor, findProgram } from '../helpers/prereq.js';

/** Deadline for tor to create its control socket after launch. */
const TOR_START_DEADLINE_MS = 60_000;
/** Deadline for tor to exit after SIGTERM before it gets SIGKILL. */
const TOR_STOP_DEADLINE_MS = 15_000;
/** Filesystem poll interval while waiting on tor. */
const POLL_INTERVAL_MS = 25;

/** Polls `condition` until it holds or the deadline passes. */
async function waitUntil(
  condition: () => boolean,
  deadlineMs: number,
  what: string,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** True while `pid` exists and is not a zombie. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

describeWithTor('real tor (network namespace, DisableNetwork)', () => {
  const ip = findProgram('ip') ?? 'ip';
  const tor = findProgram('tor') ?? 'tor';
  const ns = `onionmc-ctl-${randomBytes(4).toString('hex')}`;
  let nsCreated = false;
  let dir = '';
  let pid: number | undefined;
  let socketPath = '';
  let client: TorControlClient | undefined;

  const inNs = (...args: string[]): string =>
    execFileSync(ip, ['netns', 'exec', ns, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  beforeAll(async () => {
    execFileSync(ip, ['netns', 'add', ns], { stdio: 'ignore' });
    nsCreated = true;
    inNs(ip, 'link', 'set', 'lo', 'up');
    const links = inNs(ip, '-o', 'link', 'show')
      .trim()
      .split('\n')
      .map((line) => line.split(':')[1]?.trim());
    expect(links, 'the namespace must hold only lo').toEqual(['lo']);
    const route = spawnSync(ip, ['netns', 'exec', ns, ip, 'route', 'get', '1.1.1.1'], {
      stdio: 'ignore',
    });
    expect(route.status, 'the namespace must have no route out').not.toBe(0);

    dir = mkdtempSync(join(tmpdir(), 'onionmc-ctl-tor-'));
    socketPath = join(dir, 'control.sock');
    const torrc = join(dir, 'torrc');
    writeFileSync(
      torrc,
      [
        'DisableNetwork 1',
        'SocksPort 0',
        `ControlSocket ${socketPath}`,
        'CookieAuthentication 1',
        `CookieAuthFile ${join(dir, 'control_auth_cookie')}`,
        `DataDirectory ${join(dir, 'data')}`,
        `Log notice file ${join(dir, 'notice.log')}`,
        'RunAsDaemon 1',
        `PidFile ${join(dir, 'pid')}`,
        'GeoIPFile ""',
        'GeoIPv6File ""',
        'Sandbox 0',
        '',
      ].join('\n'),
    );
    const started = spawnSync(
      ip,
      ['netns', 'exec', ns, tor, '--defaults-torrc', '/dev/null', '-f', torrc],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: TOR_START_DEADLINE_MS,
        encoding: 'utf8',
      },
    );
    if (started.status !== 0) {
      const log = existsSync(join(dir, 'notice.log'))
        ? readFileSync(join(dir, 'notice.log'), 'utf8')
        : '';
      throw new Error(
        `tor did not start (status ${String(started.status)}): ${started.stderr}\n${log}`,
      );
    }
    await waitUntil(() => existsSync(join(dir, 'pid')), TOR_START_DEADLINE_MS, "tor's PidFile");
    pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
    await waitUntil(() => existsSync(socketPath), TOR_START_DEADLINE_MS, "tor's control socket");

    client = await TorControlClient.connect({ kind: 'unix', path: socketPath });
    await client.authenticate();
  });

  afterAll(async () => {
    await client?.close();
    // beforeAll may have failed between launch and reading the PidFile.
    if (pid === undefined && dir !== '' && existsSync(join(dir, 'pid'))) {
      pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
    }
    if (pid !== undefined && Number.isInteger(pid) && pid > 1) {
      const torPid = pid;
      try {
        process.kill(torPid, 'SIGTERM');
        await waitUntil(() => !isAlive(torPid), TOR_STOP_DEADLINE_MS, 'tor to exit');
      } catch {
        if (isAlive(torPid)) process.kill(torPid, 'SIGKILL');
        await waitUntil(() => !isAlive(torPid), TOR_STOP_DEADLINE_MS, 'tor to exit after SIGKILL');
      }
    }
    if (nsCreated) execFileSync(ip, ['netns', 'del', ns], { stdio: 'ignore' });
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('authenticated with SAFECOOKIE over the unix socket and reads the version', async () => {
    expect(client!.authMethod).toBe('SAFECOOKIE');
    const info = await client!.protocolInfo();
    expect(info.authMethods).toEqual(expect.arrayContaining(['COOKIE', 'SAFECOOKIE']));
    expect(info.cookieFile).toBe(join(dir, 'control_auth_cookie'));
    const version = await client!.getVersion();
    expect(version).toMatch(/^\d+\.\d+\.\d+\.\d+/);
    expect(version.startsWith(info.torVersion ?? '?')).toBe(true);
  });

  it('subscribes to HS_DESC', async () => {
    await client!.setEvents(['HS_DESC']);
    expect(client!.events).toEqual(['HS_DESC']);
    expect(
      hasCode(
        await client!.setEvents(['NO_SUCH_EVENT']).catch((e: unknown) => e),
        'ERR_TOR_COMMAND',
      ),
    ).toBe(true);
    expect(client!.events).toEqual(['HS_DESC']);
  });

  it('ADD_ONION NEW:ED25519-V3 with DiscardPK gives a valid service id, and DEL_ONION removes it', async () => {
    const result = await addOnion(client!, {
      key: { kind: 'new' },
      virtualPort: 5222,
      target: { host: '127.0.0.1', port: 8080 },
      discardPk: true,
    });
    expect(result.privateKey).toBeUndefined();
    expect(isV3OnionHostname(`${result.serviceId}.onion`)).toBe(true);
    expect(await client!.getInfo('onions/current')).toBe(result.serviceId);
    await delOnion(client!, result.serviceId);
    const again = await delOnion(client!, result.serviceId).catch((e: unknown) => e);
    expect(hasCode(again, 'ERR_TOR_COMMAND')).toBe(true);
    expect((again as { status?: number }).status).toBe(552);
  });

  it('ADD_ONION without DiscardPK returns a key that gives the same address again', async () => {
    const first = await addOnion(client!, {
      key: { kind: 'new' },
      virtualPort: 5222,
      target: { path: join(dir, 'onion.sock') },
      discardPk: false,
    });
    expect(first.privateKey).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    await delOnion(client!, first.serviceId);
    const second = await addOnion(client!, {
      key: { kind: 'ed25519-v3', keyBlob: first.privateKey! },
      virtualPort: 5222,
      target: { path: join(dir, 'onion.sock') },
      discardPk: false,
    });
    expect(second).toEqual({ serviceId: first.serviceId });
    await delOnion(client!, second.serviceId);
  });

  it('ADD_ONION with a key from onion-key.ts gives exactly the address computed offline', async () => {
    const key = await loadOrCreateOnionKey(join(dir, 'onionmc-hs'));
    expect(key.created).toBe(true);
    const result = await addOnion(client!, {
      key: { kind: 'ed25519-v3', keyBlob: key.keyBlob },
      virtualPort: 5222,
      target: { host: '127.0.0.1', port: 8080 },
      discardPk: true,
    });
    expect(`${result.serviceId}.onion`).toBe(key.onionAddress);
    await delOnion(client!, result.serviceId);
  });

  it('accepts the PoW options of docs/protocol.md §8.5 when the version supports them', async () => {
    const version = await client!.getVersion();
    expect(torSupportsPow(version)).toBe(true);
    const result = await addOnion(client!, {
      key: { kind: 'new' },
      virtualPort: 5222,
      target: { host: '127.0.0.1', port: 5222 },
      discardPk: true,
      pow: { queueRate: 25, queueBurst: 250 },
    });
    expect(isV3OnionHostname(`${result.serviceId}.onion`)).toBe(true);
    await delOnion(client!, result.serviceId);
  });

  it("shares tor's HiddenServiceDir format both ways (same address, same files)", async () => {
    // tor writes a directory; we read it.
    const torMade = join(dir, 'tor-made-hs');
    // ours: a directory we wrote, whose hostname tor must recompute from our secret key alone.
    const ours = join(dir, 'ours-hs');
    const oursKey = await loadOrCreateOnionKey(ours);
    const oursPublic = readFileSync(join(ours, 'hs_ed25519_public_key'));
    rmSync(join(ours, 'hostname'));
    rmSync(join(ours, 'hs_ed25519_public_key'));
    await client!.command(
      `SETCONF HiddenServiceDir=${quoteString(torMade)} HiddenServicePort=${quoteString('5222 127.0.0.1:8080')}` +
        ` HiddenServiceDir=${quoteString(ours)} HiddenServicePort=${quoteString('5222 127.0.0.1:8080')}`,
    );
    await waitUntil(
      () => existsSync(join(torMade, 'hostname')) && existsSync(join(ours, 'hostname')),
      TOR_START_DEADLINE_MS,
      'tor to write the hostname files',
    );
    const torHostname = readFileSync(join(torMade, 'hostname'), 'utf8');
    const loaded = await loadOnionKey(torMade);
    expect(`${loaded.onionAddress}\n`).toBe(torHostname);
    expect(readFileSync(join(ours, 'hostname'), 'utf8')).toBe(`${oursKey.onionAddress}\n`);
    expect(readFileSync(join(ours, 'hs_ed25519_public_key'))).toEqual(oursPublic);
    // The headers tor wrote are the ones we write.
    const torSecret = readFileSync(join(torMade, 'hs_ed25519_secret_key'));
    const ourSecret = readFileSync(join(ours, 'hs_ed25519_secret_key'));
    expect(torSecret.length).toBe(ourSecret.length);
    expect(torSecret.subarray(0, 32)).toEqual(ourSecret.subarray(0, 32));
    await client!.command('RESETCONF HiddenServiceDir HiddenServicePort');
  });

  it('a wrong cookie path gives ERR_TOR_AUTH', async () => {
    const other = await TorControlClient.connect({ kind: 'unix', path: socketPath });
    const err = await other
      .authenticate({ cookieFile: join(dir, 'no-such-cookie') })
      .catch((e: unknown) => e as Error);
    expect(hasCode(err, 'ERR_TOR_AUTH')).toBe(true);
    expect((err as Error).message).toContain(join(dir, 'no-such-cookie'));
    expect(await other.closed).toBe(err);
  });

  it('a cookie of the right length but wrong content is refused by tor or by SERVERHASH', async () => {
    const fakeCookie = join(dir, 'fake-cookie');
    writeFileSync(fakeCookie, randomBytes(32), { mode: 0o600 });
    const other = await TorControlClient.connect({ kind: 'unix', path: socketPath });
    const err = await other
      .authenticate({ cookieFile: fakeCookie })
      .catch((e: unknown) => e as Error);
    expect(hasCode(err, 'ERR_TOR_AUTH')).toBe(true);
    expect((err as Error).message).toContain('SERVERHASH');
    await other.closed;
  });
});
