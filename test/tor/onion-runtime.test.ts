/**
 * OnionRuntime against a scripted tor control port on a unix socket: the exact ADD_ONION lines
 * (docs/protocol.md §8.1, §8.2, §8.5), waiting for the descriptor upload, the PoW decision and its log lines,
 * re-creation after the control connection drops (a tor restart), and DEL_ONION on stop. The
 * real-tor behaviour is covered end to end by test/e2e/onionmc-tor.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { hasCode, TorControlError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log.js';
import { loadOrCreateOnionKey, type OnionKey } from '../../src/tor/onion-key.js';
import { OnionRuntime, type OnionRuntimeOptions } from '../../src/tor/onion-runtime.js';

/** Service ids the fake hands out, in order (56 base32 characters each). */
const SERVICE_IDS = ['a', 'b', 'c', 'd'].map((c) => c.repeat(56));

/** One command line received by the fake, with the connection it came on. */
interface Received {
  readonly connection: number;
  readonly line: string;
}

/** A scripted tor control port: NULL authentication, GETINFO version, ADD_ONION, HS_DESC events. */
class FakeTor {
  readonly received: Received[] = [];
  version = '0.4.9.11';
  /** Send `HS_DESC UPLOADED` right after ADD_ONION; when false, call {@link upload}. */
  autoUpload = true;
  /** ServiceID answered to `ADD_ONION ED25519-V3:...`. */
  persistentServiceId = 'e'.repeat(56);
  connections = 0;
  readonly #sockets = new Map<number, net.Socket>();
  readonly #server: net.Server;
  readonly #waiters = new Set<() => void>();
  #nextId = 0;

  private constructor(readonly path: string) {
    this.#server = net.createServer((socket) => {
      this.#accept(socket);
    });
  }

  static async listen(path: string): Promise<FakeTor> {
    const fake = new FakeTor(path);
    await new Promise<void>((resolve) => fake.#server.listen(path, resolve));
    return fake;
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.#sockets.size;
  }

  /** Lines received so far that start with `prefix`. */
  lines(prefix: string): string[] {
    return this.received.filter((r) => r.line.startsWith(prefix)).map((r) => r.line);
  }

  /** Resolves once `predicate` holds over what was received (checked on every line). */
  waitFor(predicate: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!predicate()) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Sends `HS_DESC UPLOADED` for `serviceId` on every open connection. */
  upload(serviceId: string): void {
    for (const socket of this.#sockets.values()) {
      socket.write(`650 HS_DESC UPLOADED ${serviceId} UNKNOWN $${'A'.repeat(40)}~relay1\r\n`);
    }
  }

  /** Closes every open connection abruptly, as a tor that exits. */
  dropAll(): void {
    for (const socket of this.#sockets.values()) socket.destroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }

  #accept(socket: net.Socket): void {
    const connection = ++this.connections;
    this.#sockets.set(connection, socket);
    socket.on('close', () => {
      this.#sockets.delete(connection);
      for (const waiter of [...this.#waiters]) waiter();
    });
    socket.on('error', () => undefined);
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        this.received.push({ connection, line });
        this.#answer(socket, line);
        for (const waiter of [...this.#waiters]) waiter();
      }
    });
  }

  #answer(socket: net.Socket, line: string): void {
    const keyword = line.split(' ', 1)[0];
    switch (keyword) {
      case 'PROTOCOLINFO':
        socket.write(
          `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="${this.version}"\r\n250 OK\r\n`,
        );
        return;
      case 'GETINFO':
        socket.write(`250-version=${this.version}\r\n250 OK\r\n`);
        return;
      case 'ADD_ONION': {
        const id = line.startsWith('ADD_ONION ED25519-V3:')
          ? this.persistentServiceId
          : (SERVICE_IDS[this.#nextId++] ?? 'z'.repeat(56));
        socket.write(`250-ServiceID=${id}\r\n250 OK\r\n`);
        if (this.autoUpload) this.upload(id);
        return;
      }
      case 'QUIT':
        socket.end('250 closing connection\r\n');
        return;
      default:
        socket.write('250 OK\r\n');
    }
  }
}

type LogLine = { level: number; msg: string };

/** A logger whose JSON lines are collected in `lines`; `waitForLine` waits on one to appear. */
function capturingLogger(): {
  logger: Logger;
  lines: () => LogLine[];
  waitForLine: (predicate: (line: LogLine) => boolean) => Promise<LogLine>;
} {
  const chunks: string[] = [];
  const waiters = new Set<() => void>();
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      for (const waiter of [...waiters]) waiter();
      callback();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const lines = (): LogLine[] =>
    chunks
      .join('')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as LogLine);
  const waitForLine = (predicate: (line: LogLine) => boolean): Promise<LogLine> =>
    new Promise((resolve) => {
      const check = (): void => {
        const found = lines().find(predicate);
        if (found === undefined) return;
        waiters.delete(check);
        resolve(found);
      };
      waiters.add(check);
      check();
    });
  return { logger, lines, waitForLine };
}

const POW = { enabled: true, queueRate: 25, queueBurst: 250 } as const;

let dir: string;
let key: OnionKey;
let fake: FakeTor;
const runtimes: OnionRuntime[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'onionmc-runtime-'));
  key = await loadOrCreateOnionKey(join(dir, 'hs'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
  await fake.close();
});

async function setup(options: Partial<OnionRuntimeOptions> = {}): Promise<{
  runtime: OnionRuntime;
  lines: () => LogLine[];
  waitForLine: (predicate: (line: LogLine) => boolean) => Promise<LogLine>;
}> {
  const path = join(dir, `control-${Math.random().toString(36).slice(2)}.sock`);
  fake = await FakeTor.listen(path);
  const { logger, lines, waitForLine } = capturingLogger();
  const runtime = new OnionRuntime({
    control: { kind: 'unix', path },
    key: { kind: 'ephemeral' },
    target: { host: '127.0.0.1', port: 8080 },
    pow: POW,
    logger,
    reconnect: { initialMs: 10, maxMs: 40 },
    ...options,
  });
  runtimes.push(runtime);
  return { runtime, lines, waitForLine };
}

describe('OnionRuntime.start', () => {
  it('adds an ephemeral onion with DiscardPK and PoW, and resolves only after the descriptor upload', async () => {
    const { runtime, lines } = await setup();
    fake.autoUpload = false;
    let resolved: string | undefined;
    const started = runtime.start().then((address) => (resolved = address));
    await fake.waitFor(() => fake.lines('ADD_ONION').length === 1);
    // ADD_ONION answered, no upload yet: start() has not resolved.
    await new Promise((resolve) => setImmediate(resolve));
    expect(resolved).toBeUndefined();
    expect(runtime.onionAddress).toBeUndefined();
    fake.upload(SERVICE_IDS[0]!);
    expect(await started).toBe(`${SERVICE_IDS[0]!}.onion`);
    expect(fake.lines('ADD_ONION')).toEqual([
      'ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK PoWDefensesEnabled=1 PoWQueueRate=25 PoWQueueBurst=250',
    ]);
    expect(fake.lines('SETEVENTS')).toEqual(['SETEVENTS HS_DESC']);
    expect(runtime.onionAddress).toBe(`${SERVICE_IDS[0]!}.onion`);
    expect(runtime.powDefenses).toBe(true);
    expect(runtime.authMethod).toBe('NULL');
    const pow = lines().filter((l) => l.msg.includes('PoW'));
    expect(pow.map((l) => [l.level, l.msg])).toEqual([
      [30, 'onion service PoW defences on (PoWQueueRate=25, PoWQueueBurst=250)'],
    ]);
  });

  it('adds the persistent key of hidden_service_dir without DiscardPK, to a unix target', async () => {
    const { runtime } = await setup({
      key: { kind: 'persistent', key },
      target: { path: '/run/onionmc/onion.sock' },
    });
    fake.persistentServiceId = key.serviceId;
    expect(await runtime.start()).toBe(key.onionAddress);
    expect(fake.lines('ADD_ONION')).toEqual([
      `ADD_ONION ED25519-V3:${key.keyBlob} Port=5222,unix:/run/onionmc/onion.sock PoWDefensesEnabled=1 PoWQueueRate=25 PoWQueueBurst=250`,
    ]);
  });

  it('refuses a service id that does not belong to the persistent key, and closes the connection', async () => {
    const { runtime } = await setup({ key: { kind: 'persistent', key } });
    const err = await runtime.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_TOR_COMMAND')).toBe(true);
    expect((err as Error).message).toContain(key.onionAddress);
    await fake.waitFor(() => fake.connections === 1 && fake.openConnections === 0);
  });

  it('leaves PoW off with one warning when tor is older than 0.4.9.2', async () => {
    const { runtime, lines } = await setup();
    fake.version = '0.4.8.16';
    await runtime.start();
    expect(fake.lines('ADD_ONION')).toEqual([
      'ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK',
    ]);
    expect(runtime.powDefenses).toBe(false);
    const pow = lines().filter((l) => l.msg.includes('PoW'));
    expect(pow).toHaveLength(1);
    expect(pow[0]?.level).toBe(40);
    expect(pow[0]?.msg).toContain('tor 0.4.8.16 is older than 0.4.9.2');
  });

  it('leaves PoW off, and says why, when the configuration turns it off', async () => {
    const { runtime, lines } = await setup({ pow: { ...POW, enabled: false } });
    await runtime.start();
    expect(fake.lines('ADD_ONION')).toEqual([
      'ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK',
    ]);
    expect(
      lines()
        .filter((l) => l.msg.includes('PoW'))
        .map((l) => [l.level, l.msg]),
    ).toEqual([[30, 'onion service PoW defences off: pow_defenses = false in the configuration']]);
  });

  it('fails with ERR_TOR_TIMEOUT naming bootstrap when no descriptor is uploaded in time', async () => {
    const { runtime } = await setup({ uploadTimeoutMs: 50 });
    fake.autoUpload = false;
    const err = await runtime.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TorControlError);
    expect(hasCode(err, 'ERR_TOR_TIMEOUT')).toBe(true);
    expect((err as Error).message).toContain('Bootstrapped 100%');
  });

  it('fails with ERR_TOR_CONTROL_UNREACHABLE naming the socket when nothing listens there', async () => {
    await setup();
    const missing = join(dir, 'no-such-control.sock');
    const runtime = new OnionRuntime({
      control: { kind: 'unix', path: missing },
      key: { kind: 'ephemeral' },
      target: { host: '127.0.0.1', port: 8080 },
      pow: POW,
      logger: capturingLogger().logger,
    });
    const err = await runtime.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'ERR_TOR_CONTROL_UNREACHABLE')).toBe(true);
    expect((err as Error).message).toContain(`unix:${missing}`);
  });
});

describe('OnionRuntime after start', () => {
  it('re-creates the onion when the control connection drops and reports the new address', async () => {
    const { runtime, lines } = await setup();
    expect(await runtime.start()).toBe(`${SERVICE_IDS[0]!}.onion`);
    const recreated = new Promise<string>((resolve) => runtime.onRecreated(resolve));
    fake.dropAll();
    expect(await recreated).toBe(`${SERVICE_IDS[1]!}.onion`);
    expect(runtime.onionAddress).toBe(`${SERVICE_IDS[1]!}.onion`);
    expect(fake.connections).toBe(2);
    expect(fake.lines('ADD_ONION')).toHaveLength(2);
    // The PoW state did not change: still one line about it.
    expect(lines().filter((l) => l.msg.includes('PoW'))).toHaveLength(1);
    expect(
      lines().some((l) => l.level === 40 && l.msg.startsWith('lost the tor control connection')),
    ).toBe(true);
  });

  it('keeps retrying while tor is away, then re-creates the same persistent onion', async () => {
    const { runtime, waitForLine } = await setup({ key: { kind: 'persistent', key } });
    fake.persistentServiceId = key.serviceId;
    await runtime.start();
    const path = fake.path;
    const recreated = new Promise<string>((resolve) => runtime.onRecreated(resolve));
    // tor goes away: connection dropped and nothing listening for a while.
    await fake.close();
    await waitForLine((l) => l.msg.startsWith('lost the tor control connection'));
    const retry = await waitForLine((l) =>
      l.msg.startsWith('cannot re-create the onion service yet'),
    );
    expect(retry.level).toBe(40);
    expect(runtime.onionAddress).toBeUndefined();
    fake = await FakeTor.listen(path);
    fake.persistentServiceId = key.serviceId;
    expect(await recreated).toBe(key.onionAddress);
    expect(fake.lines('ADD_ONION')).toEqual([
      `ADD_ONION ED25519-V3:${key.keyBlob} Port=5222,127.0.0.1:8080 PoWDefensesEnabled=1 PoWQueueRate=25 PoWQueueBurst=250`,
    ]);
  });

  it('stop() removes the onion with DEL_ONION, quits, and does not reconnect', async () => {
    const { runtime } = await setup();
    await runtime.start();
    await runtime.stop();
    expect(fake.received.map((r) => r.line).slice(-2)).toEqual([
      `DEL_ONION ${SERVICE_IDS[0]!}`,
      'QUIT',
    ]);
    expect(runtime.onionAddress).toBeUndefined();
    await runtime.stop(); // idempotent
    expect(fake.connections).toBe(1);
    await expect(runtime.start()).rejects.toSatisfy((e: unknown) => hasCode(e, 'ERR_TOR_CONTROL'));
  });

  it('stop() during start aborts the wait for the descriptor upload', async () => {
    const { runtime } = await setup();
    fake.autoUpload = false;
    const started = runtime.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    await fake.waitFor(() => fake.lines('ADD_ONION').length === 1);
    await runtime.stop();
    expect(hasCode(await started, 'ERR_TOR_CONTROL')).toBe(true);
    expect(fake.connections).toBe(1);
  });
});
