/**
 * Real Tor, offline: a private Tor network in a network namespace (3 authorities, 3 relays,
 * clients alice and bob). alice publishes an onion service through her control socket (raw
 * control protocol written here: the project's control client is tested on its own), bob dials
 * it through his unix SocksPort with socksDial, and a line goes each way.
 *
 * Needs root and tor (skipped with the reason otherwise; fails when CI=true).
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SocksError } from '../../src/errors.js';
import { socksDial } from '../../src/tor/socks-dialer.js';
import { describeWithTor } from '../helpers/prereq.js';
import {
  startPrivateTorNetwork,
  type PrivateTorNetwork,
} from './tor-network/private-tor-network.js';

/** Virtual port of the onion service (JoinMarket's default onion port). */
const ONION_VIRTUAL_PORT = 5222;
/** Deadline for control replies and events in this test. */
const CONTROL_TIMEOUT_MS = 30_000;
/** Deadline of one SOCKS dial through the private network. */
const DIAL_TIMEOUT_MS = 30_000;

/** A minimal control-port connection: raw lines in, lines out (control-spec §2-§4). */
class RawControl {
  private readonly lines: string[] = [];
  private readonly listeners = new Set<() => void>();
  private buffer = '';

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let index: number;
      while ((index = this.buffer.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, index));
        this.buffer = this.buffer.slice(index + 2);
      }
      for (const listener of this.listeners) listener();
    });
    socket.on('error', () => undefined);
  }

  static connect(path: string): Promise<RawControl> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path });
      socket.once('connect', () => {
        resolve(new RawControl(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Resolves with the first non-undefined value of `probe` over the lines received so far. */
  private waitFor<T>(probe: (lines: readonly string[]) => T | undefined, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const value = probe(this.lines);
        if (value === undefined) return;
        done();
        resolve(value);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`no ${what} within ${CONTROL_TIMEOUT_MS} ms; got:\n${this.lines.join('\n')}`),
        );
      }, CONTROL_TIMEOUT_MS);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Sends one command; resolves with its reply lines (events interleaved are left out). */
  async command(line: string): Promise<string[]> {
    const from = this.lines.length;
    this.socket.write(`${line}\r\n`);
    const isEnd = (l: string): boolean => /^\d{3} /.test(l) && !l.startsWith('650');
    const reply = await this.waitFor(
      (lines) => {
        const end = lines.findIndex((l, i) => i >= from && isEnd(l));
        return end < 0 ? undefined : lines.slice(from, end + 1).filter((l) => !l.startsWith('650'));
      },
      `reply to ${line.split(' ')[0]!}`,
    );
    if (!reply.at(-1)?.startsWith('250'))
      throw new Error(`${line.split(' ')[0]!} failed: ${reply.join(' | ')}`);
    return reply;
  }

  /**
   * Resolves once every descriptor upload of `serviceId` announced so far (`650 HS_DESC UPLOAD`)
   * has ended in `UPLOADED`, with at least one upload: a client whose hashring picks an HSDir
   * that has not received the descriptor yet gets 0xF0 (seen here when dialing at the first
   * UPLOADED). Fails on `HS_DESC FAILED`. Event format: control-spec §4.1.25.
   */
  async allDescriptorsUploaded(serviceId: string): Promise<number> {
    return this.waitFor((lines) => {
      const count = (action: string): number =>
        lines.filter((l) => l.startsWith(`650 HS_DESC ${action} ${serviceId} `)).length;
      if (count('FAILED') > 0) throw new Error(`descriptor upload failed:\n${lines.join('\n')}`);
      const uploaded = count('UPLOADED');
      return uploaded > 0 && uploaded >= count('UPLOAD') ? uploaded : undefined;
    }, `HS_DESC UPLOADED for every upload of ${serviceId}`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Whether `pid` is a live (not zombie) process named tor. */
function isLiveTor(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.includes('(tor)') && !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

/** Lines from a socket, one promise at a time. */
function lineReader(socket: net.Socket): () => Promise<string> {
  let buffer = '';
  const waiting: ((line: string) => void)[] = [];
  const ready: string[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let index: number;
    while ((index = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, index);
      buffer = buffer.slice(index + 1);
      const waiter = waiting.shift();
      if (waiter !== undefined) waiter(line);
      else ready.push(line);
    }
  });
  return () => {
    const line = ready.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => waiting.push(resolve));
  };
}

describeWithTor('private Tor network: onion service on alice, dialed by bob', () => {
  let network: PrivateTorNetwork | undefined;
  let workDir: string | undefined;
  let service: net.Server | undefined;
  let control: RawControl | undefined;
  let onionHost = '';
  const serviceSockets = new Set<net.Socket>();
  const log = (msg: string): void => {
    console.info(`[tor-network] ${msg}`);
  };

  beforeAll(async () => {
    const startedAt = Date.now();
    network = await startPrivateTorNetwork({ clients: ['alice', 'bob'], logger: log });
    log(`network up in ${Date.now() - startedAt} ms`);
  });

  afterAll(async () => {
    control?.close();
    for (const socket of serviceSockets) socket.destroy();
    const server = service;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    }
    await network?.stop();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  it('runs every tor in a namespace with only lo and no route out (checked through exec)', async () => {
    const runInside = async (args: string[]): Promise<{ code: number | null; stdout: string }> => {
      const child = network!.exec(args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      const [code] = (await once(child, 'close')) as [number | null];
      return { code, stdout };
    };
    const links = await runInside(['ip', '-o', 'link', 'show']);
    expect(links.code).toBe(0);
    const lines = links.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^1: lo:/);
    expect((await runInside(['ip', 'route', 'get', '1.1.1.1'])).code).not.toBe(0);
    const pids = execFileSync('ip', ['netns', 'pids', network!.namespace], { encoding: 'utf8' })
      .trim()
      .split('\n');
    // 3 authorities + 3 relays + 2 clients.
    expect(pids).toHaveLength(8);
    for (const client of network!.clients) expect(pids).toContain(String(client.pid));
  });

  it('publishes an onion service on alice and carries a line each way from bob', async () => {
    const [alice, bob] = network!.clients;
    expect(alice?.name).toBe('alice');
    expect(bob?.name).toBe('bob');

    // The service: a unix socket outside the namespace, reached by alice's tor through the filesystem.
    workDir = await mkdtemp(join(tmpdir(), 'onionmc-e2e-'));
    const servicePath = join(workDir, 'service.sock');
    service = net.createServer((socket) => {
      serviceSockets.add(socket);
      socket.on('close', () => serviceSockets.delete(socket));
      socket.on('error', () => undefined);
      const next = lineReader(socket);
      socket.write('hello from alice\n');
      void next().then((line) => socket.write(`alice got: ${line}\n`));
    });
    await new Promise<void>((resolve) => service!.listen(servicePath, resolve));

    const publishStartedAt = Date.now();
    control = await RawControl.connect(alice!.controlSocket);
    const cookie = await readFile(alice!.cookieFile);
    expect(cookie).toHaveLength(32);
    await control.command(`AUTHENTICATE ${cookie.toString('hex')}`);
    await control.command('SETEVENTS HS_DESC');
    const added = await control.command(
      `ADD_ONION NEW:ED25519-V3 Flags=DiscardPK Port=${ONION_VIRTUAL_PORT},unix:${servicePath}`,
    );
    const serviceId = added
      .map((l) => /^250-ServiceID=([a-z2-7]{56})$/.exec(l)?.[1])
      .find((id) => id);
    expect(serviceId).toBeDefined();
    expect(added.some((l) => l.startsWith('250-PrivateKey'))).toBe(false);
    const uploads = await control.allDescriptorsUploaded(serviceId!);
    log(
      `onion service published (${uploads} descriptor uploads) in ${Date.now() - publishStartedAt} ms`,
    );
    onionHost = `${serviceId!}.onion`;

    const dialStartedAt = Date.now();
    const socket = await socksDial({
      proxy: { kind: 'unix', path: bob!.socksSocket },
      host: onionHost,
      port: ONION_VIRTUAL_PORT,
      timeoutMs: DIAL_TIMEOUT_MS,
      isolation: { username: 'e2e', password: 'first' },
    });
    log(`socksDial to the onion in ${Date.now() - dialStartedAt} ms`);
    try {
      socket.on('error', () => undefined);
      const next = lineReader(socket);
      expect(await next()).toBe('hello from alice');
      const roundTripStartedAt = Date.now();
      socket.write('hello from bob\n');
      expect(await next()).toBe('alice got: hello from bob');
      log(`line round trip over the onion circuit in ${Date.now() - roundTripStartedAt} ms`);
    } finally {
      socket.destroy();
    }
  }, 60_000);

  it("returns tor's extended error 0xF6 for a malformed onion name", async () => {
    const bob = network!.clients[1]!;
    const err: unknown = await socksDial({
      proxy: { kind: 'unix', path: bob.socksSocket },
      host: `${'a'.repeat(56)}.onion`,
      port: ONION_VIRTUAL_PORT,
      timeoutMs: DIAL_TIMEOUT_MS,
    }).then(
      (socket) => {
        socket.destroy();
        return new Error('dial to a malformed onion succeeded');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SocksError);
    expect((err as SocksError).reply).toBe(0xf6);
    expect((err as SocksError).message).toContain('invalid address');
  });

  it('restarts bob on the same sockets and dials the onion again from a cold tor', async () => {
    expect(onionHost).not.toBe('');
    const oldPid = network!.clients.find((c) => c.name === 'bob')!.pid;
    const restartStartedAt = Date.now();
    const bob = await network!.restartClient('bob');
    log(`bob restarted in ${Date.now() - restartStartedAt} ms`);
    expect(bob.pid).not.toBe(oldPid);
    expect(isLiveTor(oldPid)).toBe(false);
    expect(isLiveTor(bob.pid)).toBe(true);
    const socket = await socksDial({
      proxy: { kind: 'unix', path: bob.socksSocket },
      host: onionHost,
      port: ONION_VIRTUAL_PORT,
      timeoutMs: DIAL_TIMEOUT_MS,
      isolation: { username: 'e2e', password: 'second' },
    });
    try {
      socket.on('error', () => undefined);
      const next = lineReader(socket);
      expect(await next()).toBe('hello from alice');
      socket.write('back again\n');
      expect(await next()).toBe('alice got: back again');
    } finally {
      socket.destroy();
    }
  }, 60_000);

  it('adds a client after the start, dials the onion from it, and stops it by PID', async () => {
    expect(onionHost).not.toBe('');
    const carol = await network!.addClient('carol');
    expect(network!.clients.map((c) => c.name)).toEqual(['alice', 'bob', 'carol']);
    const socket = await socksDial({
      proxy: { kind: 'unix', path: carol.socksSocket },
      host: onionHost,
      port: ONION_VIRTUAL_PORT,
      timeoutMs: DIAL_TIMEOUT_MS,
    });
    try {
      socket.on('error', () => undefined);
      const next = lineReader(socket);
      expect(await next()).toBe('hello from alice');
      socket.write('carol here\n');
      expect(await next()).toBe('alice got: carol here');
    } finally {
      socket.destroy();
    }
    await network!.stopClient('carol');
    expect(isLiveTor(carol.pid)).toBe(false);
    expect(network!.clients.map((c) => c.name)).toEqual(['alice', 'bob']);
  }, 60_000);

  it('stop() kills every tor by PID and deletes the namespace and the data directory', async () => {
    const ns = network!.namespace;
    const baseDir = network!.baseDir;
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
    expect(pids.length).toBeGreaterThanOrEqual(8);
    control?.close();
    await network!.stop();
    await network!.stop(); // idempotent
    expect(pids.filter(isLiveTor)).toEqual([]);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(ns);
    expect(existsSync(baseDir)).toBe(false);
    expect(network!.clients).toEqual([]);
  });
});
