/**
 * TorControlClient and the onion-service commands against a scripted fake control port on
 * 127.0.0.1:0 (and on a unix socket): byte-exact checks of what the client writes, replies split
 * at every byte boundary, and the real SAFECOOKIE HMACs computed by the fake tor.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCode, TorControlError, type ErrorCode } from '../../src/errors.js';
import { TorControlClient, type Endpoint } from '../../src/tor/control-client.js';
import {
  addOnion,
  delOnion,
  formatAddOnion,
  torSupportsPow,
  waitForDescriptorUpload,
  watchDescriptorUploads,
} from '../../src/tor/onion-service.js';

// ---------------------------------------------------------------------------------------------
// The fake control port

/** One accepted connection as the fake tor sees it. */
class FakeConn {
  /** Every byte the client wrote, as latin1 text. */
  received = '';
  readonly ended: Promise<void>;
  readonly #lines: string[] = [];
  readonly #waiters: ((line: string | undefined) => void)[] = [];
  #buffer = '';
  #isEnded = false;

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    this.ended = new Promise((resolve) => {
      socket.on('close', () => {
        this.#isEnded = true;
        for (const w of this.#waiters.splice(0)) w(undefined);
        resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      this.received += text;
      this.#buffer += text;
      let at: number;
      while ((at = this.#buffer.indexOf('\r\n')) !== -1) {
        const line = this.#buffer.slice(0, at);
        this.#buffer = this.#buffer.slice(at + 2);
        const waiter = this.#waiters.shift();
        if (waiter !== undefined) waiter(line);
        else this.#lines.push(line);
      }
    });
  }

  /** The next CRLF-terminated line the client wrote (without CRLF). */
  nextLine(): Promise<string> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#isEnded) return Promise.reject(new Error('client closed the connection'));
    return new Promise((resolve, reject) => {
      this.#waiters.push((l) => {
        if (l === undefined) reject(new Error('client closed the connection'));
        else resolve(l);
      });
    });
  }

  /** Expects the next line to be exactly `expected`. */
  async expectLine(expected: string): Promise<void> {
    expect(await this.nextLine()).toBe(expected);
  }

  /** Writes `text`; with `bytewise`, one byte per write and an event-loop turn between writes. */
  async send(text: string, bytewise = false): Promise<void> {
    const bytes = Buffer.from(text, 'utf8');
    if (!bytewise) {
      await new Promise<void>((resolve) =>
        this.socket.write(bytes, () => {
          resolve();
        }),
      );
      return;
    }
    for (const b of bytes) {
      await new Promise<void>((resolve) =>
        this.socket.write(Uint8Array.of(b), () => {
          resolve();
        }),
      );
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

interface Fake {
  endpoint: Endpoint;
  /** Settles when the script finished (rejects with its assertion failure). */
  done: Promise<void>;
  conn: Promise<FakeConn>;
  close(): Promise<void>;
}

/** Starts a fake control port that runs `script` on the first connection. */
async function startFake(
  script: (conn: FakeConn) => Promise<void>,
  where: { unixPath?: string } = {},
): Promise<Fake> {
  let resolveConn!: (c: FakeConn) => void;
  const conn = new Promise<FakeConn>((resolve) => {
    resolveConn = resolve;
  });
  const server = net.createServer((socket) => {
    resolveConn(new FakeConn(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (where.unixPath !== undefined) server.listen(where.unixPath, resolve);
    else server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const endpoint: Endpoint =
    where.unixPath !== undefined
      ? { kind: 'unix', path: where.unixPath }
      : { kind: 'tcp', host: '127.0.0.1', port: (address as net.AddressInfo).port };
  const done = conn.then(script);
  done.catch(() => undefined);
  return {
    endpoint,
    done,
    conn,
    close: async () => {
      (await Promise.race([conn, Promise.resolve(undefined)]))?.socket.destroy();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

/** Awaits `promise` and returns the TorControlError it rejects with. */
async function rejection(promise: Promise<unknown>): Promise<TorControlError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(TorControlError);
    return err as TorControlError;
  }
  throw new Error('expected a rejection');
}

function expectCode(err: unknown, code: ErrorCode): void {
  expect(hasCode(err, code), String(err)).toBe(true);
}

// ---------------------------------------------------------------------------------------------
// Fixtures

let dir: string;
let cookiePath: string;
const COOKIE = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff);
const CLIENT_NONCE = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i);
const SERVER_NONCE = Uint8Array.from({ length: 32 }, (_, i) => 0x10 + i);
const fixedRandom = (n: number): Uint8Array => {
  expect(n).toBe(32);
  return CLIENT_NONCE.slice();
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'onionmc-ctl-test-'));
  cookiePath = join(dir, 'control_auth_cookie');
  writeFileSync(cookiePath, COOKIE, { mode: 0o600 });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function protocolInfo(methods: string, cookieFile?: string): string {
  const cookie = cookieFile === undefined ? '' : ` COOKIEFILE="${cookieFile}"`;
  return `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${methods}${cookie}\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n`;
}

/** SAFECOOKIE as tor does it (control-spec §3.24), with the real HMACs. */
function safeCookieHashes(
  cookie: Uint8Array,
  clientNonce: Uint8Array,
  serverNonce: Uint8Array,
): {
  serverHash: string;
  clientHash: string;
} {
  const msg = new Uint8Array([...cookie, ...clientNonce, ...serverNonce]);
  const key = (s: string): Uint8Array => utf8ToBytes(s);
  return {
    serverHash: bytesToHex(
      hmac(sha256, key('Tor safe cookie authentication server-to-controller hash'), msg),
    ).toUpperCase(),
    clientHash: bytesToHex(
      hmac(sha256, key('Tor safe cookie authentication controller-to-server hash'), msg),
    ).toUpperCase(),
  };
}

/** A fake tor that runs the whole SAFECOOKIE exchange, then answers GETINFO version. */
function safeCookieScript(bytewise: boolean, serverHashOverride?: string) {
  return async (conn: FakeConn): Promise<void> => {
    await conn.expectLine('PROTOCOLINFO 1');
    await conn.send(protocolInfo('COOKIE,SAFECOOKIE', cookiePath), bytewise);
    const challenge = await conn.nextLine();
    const match = /^AUTHCHALLENGE SAFECOOKIE ([0-9A-F]{64})$/.exec(challenge);
    expect(match).not.toBeNull();
    const clientNonce = hexToBytes(match![1]!);
    const { serverHash, clientHash } = safeCookieHashes(COOKIE, clientNonce, SERVER_NONCE);
    await conn.send(
      `250 AUTHCHALLENGE SERVERHASH=${serverHashOverride ?? serverHash} SERVERNONCE=${bytesToHex(SERVER_NONCE).toUpperCase()}\r\n`,
      bytewise,
    );
    if (serverHashOverride !== undefined) return;
    await conn.expectLine(`AUTHENTICATE ${clientHash}`);
    await conn.send('250 OK\r\n', bytewise);
    await conn.expectLine('GETINFO version');
    await conn.send('250-version=0.4.9.11 (git-0123456789abcdef)\r\n250 OK\r\n', bytewise);
  };
}

// ---------------------------------------------------------------------------------------------

describe('TorControlClient: connecting', () => {
  it('names the address and the torrc lines when the TCP port is closed', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) =>
      probe.close(() => {
        resolve();
      }),
    );
    const err = await rejection(TorControlClient.connect({ kind: 'tcp', host: '127.0.0.1', port }));
    expectCode(err, 'ERR_TOR_CONTROL_UNREACHABLE');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toContain(`ControlPort ${port}`);
    expect(err.message).toContain('CookieAuthentication 1');
    expect(err.message).toContain('ControlSocket /run/tor/control');
    expect(err.message).not.toMatch(/\broot\b|sudo/);
  });

  it('names the socket path and the torrc lines when the unix socket is missing', async () => {
    const path = join(dir, 'no-such-control.sock');
    const err = await rejection(TorControlClient.connect({ kind: 'unix', path }));
    expectCode(err, 'ERR_TOR_CONTROL_UNREACHABLE');
    expect(err.message).toContain(`unix:${path}`);
    expect(err.message).toContain(`ControlSocket ${path}`);
    expect(err.message).toContain('CookieAuthentication 1');
    expect(err.message).not.toMatch(/\broot\b|sudo/);
  });

  it('rejects when the signal is already aborted', async () => {
    const err = await rejection(
      TorControlClient.connect(
        { kind: 'tcp', host: '127.0.0.1', port: 9 },
        { signal: AbortSignal.abort() },
      ),
    );
    expectCode(err, 'ERR_ABORTED');
  });
});

describe('TorControlClient: authentication', () => {
  it('does SAFECOOKIE byte for byte with replies split at every byte (TCP)', async () => {
    const fake = await startFake(safeCookieScript(true));
    const client = await TorControlClient.connect(fake.endpoint);
    await client.authenticate({ randomBytes: fixedRandom });
    expect(client.authMethod).toBe('SAFECOOKIE');
    expect(await client.getVersion()).toBe('0.4.9.11 (git-0123456789abcdef)');
    await fake.done;
    const { clientHash } = safeCookieHashes(COOKIE, CLIENT_NONCE, SERVER_NONCE);
    expect((await fake.conn).received).toBe(
      'PROTOCOLINFO 1\r\n' +
        `AUTHCHALLENGE SAFECOOKIE ${bytesToHex(CLIENT_NONCE).toUpperCase()}\r\n` +
        `AUTHENTICATE ${clientHash}\r\n` +
        'GETINFO version\r\n',
    );
    client.destroy();
    await fake.close();
  });

  it('does SAFECOOKIE over a unix socket with a random nonce', async () => {
    const fake = await startFake(safeCookieScript(false), { unixPath: join(dir, 'control.sock') });
    const client = await TorControlClient.connect(fake.endpoint);
    await client.authenticate();
    expect(client.authMethod).toBe('SAFECOOKIE');
    expect(await client.getVersion()).toMatch(/^0\.4\.9\.11/);
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it('refuses a wrong SERVERHASH with ERR_TOR_AUTH and never sends AUTHENTICATE', async () => {
    const fake = await startFake(safeCookieScript(false, 'AB'.repeat(32)));
    const client = await TorControlClient.connect(fake.endpoint);
    const err = await rejection(client.authenticate({ randomBytes: fixedRandom }));
    expectCode(err, 'ERR_TOR_AUTH');
    expect(err.message).toContain('SERVERHASH');
    await fake.done;
    const conn = await fake.conn;
    await conn.ended;
    expect(conn.received).not.toContain('AUTHENTICATE ');
    expect(await client.closed).toBe(err);
    await fake.close();
  });

  it('authenticates with COOKIE, sending the cookie in hex', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('COOKIE', cookiePath));
      await conn.expectLine(`AUTHENTICATE ${bytesToHex(COOKIE).toUpperCase()}`);
      await conn.send('250 OK\r\n');
    });
    const client = await TorControlClient.connect(fake.endpoint);
    await client.authenticate();
    expect(client.authMethod).toBe('COOKIE');
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it('authenticates with HASHEDPASSWORD, quoting the password', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('HASHEDPASSWORD'));
      await conn.expectLine('AUTHENTICATE "pa\\"ss\\\\word"');
      await conn.send('250 OK\r\n');
    });
    const client = await TorControlClient.connect(fake.endpoint);
    await client.authenticate({ password: 'pa"ss\\word' });
    expect(client.authMethod).toBe('HASHEDPASSWORD');
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it('needs a password when tor offers only HASHEDPASSWORD', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('HASHEDPASSWORD'));
    });
    const client = await TorControlClient.connect(fake.endpoint);
    const err = await rejection(client.authenticate());
    expectCode(err, 'ERR_TOR_AUTH');
    expect(err.message).toContain('HASHEDPASSWORD');
    await fake.done;
    const conn = await fake.conn;
    await conn.ended;
    expect(conn.received).toBe('PROTOCOLINFO 1\r\n');
    await fake.close();
  });

  it('authenticates with NULL', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('NULL'));
      await conn.expectLine('AUTHENTICATE');
      await conn.send('250 OK\r\n');
    });
    const client = await TorControlClient.connect(fake.endpoint);
    await client.authenticate();
    expect(client.authMethod).toBe('NULL');
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it('explains an unreadable cookie file: the file, the group, CookieAuthFileGroupReadable', async () => {
    const missing = join(dir, 'elsewhere', 'control_auth_cookie');
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('COOKIE,SAFECOOKIE', missing));
    });
    const client = await TorControlClient.connect(fake.endpoint);
    const err = await rejection(client.authenticate());
    expectCode(err, 'ERR_TOR_AUTH');
    expect(err.message).toContain(missing);
    expect(err.message).toContain('ENOENT');
    expect(err.message).toContain('debian-tor');
    expect(err.message).toContain('CookieAuthFileGroupReadable 1');
    expect(err.message).not.toMatch(/\broot\b|sudo/);
    await fake.done;
    expect((await fake.conn).received).toBe('PROTOCOLINFO 1\r\n');
    await fake.close();
  });

  it('falls back to HASHEDPASSWORD when the cookie file is unreadable', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('COOKIE,SAFECOOKIE,HASHEDPASSWORD', join(dir, 'nope')));
      await conn.expectLine('AUTHENTICATE "secret"');
      await conn.send('250 OK\r\n');
    });
    const client = await TorControlClient.connect(fake.endpoint);
    await client.authenticate({ password: 'secret' });
    expect(client.authMethod).toBe('HASHEDPASSWORD');
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it('refuses a cookie file of the wrong length without showing its bytes', async () => {
    const shortCookie = join(dir, 'short_cookie');
    writeFileSync(shortCookie, 'SECRETSECRET', { mode: 0o600 });
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('COOKIE', shortCookie));
    });
    const client = await TorControlClient.connect(fake.endpoint);
    const err = await rejection(client.authenticate());
    expectCode(err, 'ERR_TOR_AUTH');
    expect(err.message).toContain('12 bytes');
    expect(err.message).not.toContain('SECRET');
    await fake.done;
    await fake.close();
  });

  it('uses the cookieFile option instead of the path tor names', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('COOKIE', '/nonexistent/cookie'));
      await conn.expectLine(`AUTHENTICATE ${bytesToHex(COOKIE).toUpperCase()}`);
      await conn.send('250 OK\r\n');
    });
    const client = await TorControlClient.connect(fake.endpoint);
    await client.authenticate({ cookieFile: cookiePath });
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it("reports a refused authentication with tor's status and text", async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('COOKIE', cookiePath));
      await conn.nextLine();
      await conn.send('515 Authentication failed: Wrong length on authentication cookie.\r\n');
      conn.socket.end();
    });
    const client = await TorControlClient.connect(fake.endpoint);
    const err = await rejection(client.authenticate());
    expectCode(err, 'ERR_TOR_AUTH');
    expect(err.status).toBe(515);
    expect(err.message).toContain('Wrong length on authentication cookie.');
    await fake.done;
    expectCode(await client.closed, 'ERR_TOR_AUTH');
    await fake.close();
  });

  it('reports a refused AUTHCHALLENGE as ERR_TOR_AUTH', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('PROTOCOLINFO 1');
      await conn.send(protocolInfo('SAFECOOKIE', cookiePath));
      await conn.nextLine();
      await conn.send('513 Invalid base16 client nonce\r\n');
    });
    const client = await TorControlClient.connect(fake.endpoint);
    const err = await rejection(client.authenticate());
    expectCode(err, 'ERR_TOR_AUTH');
    expect(err.status).toBe(513);
    await fake.done;
    await fake.close();
  });
});

describe('TorControlClient: commands', () => {
  /** A fake that skips auth: the client sends commands right away (tor would refuse; the fake does not care). */
  async function connected(script: (conn: FakeConn) => Promise<void>): Promise<{
    fake: Fake;
    client: TorControlClient;
  }> {
    const fake = await startFake(script);
    const client = await TorControlClient.connect(fake.endpoint);
    return { fake, client };
  }

  it('matches pipelined replies to commands first in, first out', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('GETINFO version');
      await conn.expectLine('GETINFO nope');
      await conn.expectLine('GETINFO config-file');
      await conn.send(
        '250-version=0.4.9.11\r\n250 OK\r\n' +
          '552 Unrecognized key "nope"\r\n' +
          '250-config-file=/etc/tor/torrc\r\n250 OK\r\n',
        true,
      );
    });
    const a = client.command('GETINFO version');
    const b = client.command('GETINFO nope');
    const c = client.getInfo('config-file');
    expect((await a).lines[0]!.text).toBe('version=0.4.9.11');
    const err = await rejection(b);
    expectCode(err, 'ERR_TOR_COMMAND');
    expect(err.status).toBe(552);
    expect(err.message).toContain('Unrecognized key "nope"');
    expect(await c).toBe('/etc/tor/torrc');
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it('routes 650 events interleaved with a multi-line reply, by their first word', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('SETEVENTS HS_DESC STATUS_CLIENT');
      await conn.send('250 OK\r\n');
      await conn.expectLine('GETINFO net/listeners/socks config-file');
      await conn.send(
        '650 HS_DESC UPLOAD abc UNKNOWN $AA~r1\r\n' +
          '250-net/listeners/socks="127.0.0.1:9050"\r\n' +
          '650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED\r\n' +
          '250-config-file=/etc/tor/torrc\r\n' +
          '650-HS_DESC_CONTENT abc x $AA~r1\r\n650-body\r\n' +
          '250 OK\r\n' +
          '650 OK\r\n' +
          '650 HS_DESC UPLOADED abc UNKNOWN $AA~r1\r\n',
        true,
      );
      await conn.expectLine('GETINFO version');
      await conn.send('650 HS_DESC UPLOAD def UNKNOWN $AA~r1\r\n250-version=1\r\n250 OK\r\n');
    });
    const hsDesc: string[] = [];
    const status: string[] = [];
    const unsubscribe = client.onEvent('HS_DESC', (line, reply) => {
      expect(reply.isAsync).toBe(true);
      hsDesc.push(line.text);
    });
    client.onEvent('STATUS_CLIENT', (line) => {
      status.push(line.text);
    });
    client.onEvent('HS_DESC', () => {
      throw new Error('a broken listener must not stop the others');
    });
    await client.setEvents(['HS_DESC', 'STATUS_CLIENT', 'HS_DESC']);
    expect(client.events).toEqual(['HS_DESC', 'STATUS_CLIENT']);
    const reply = await client.command('GETINFO net/listeners/socks config-file');
    expect(reply.lines.map((l) => l.text)).toEqual([
      'net/listeners/socks="127.0.0.1:9050"',
      'config-file=/etc/tor/torrc',
      'OK',
    ]);
    await expect.poll(() => hsDesc.length).toBe(2);
    expect(hsDesc).toEqual([
      'HS_DESC UPLOAD abc UNKNOWN $AA~r1',
      'HS_DESC UPLOADED abc UNKNOWN $AA~r1',
    ]);
    expect(status).toEqual(['STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED']);
    unsubscribe();
    // The event before this reply reaches no unsubscribed listener.
    expect(await client.getVersion()).toBe('1');
    expect(hsDesc).toHaveLength(2);
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it('returns data replies with dot-stuffing undone', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('GETINFO config-text');
      await conn.send(
        '250+config-text=\r\nControlPort 9051\r\n..hidden\r\nSocksPort 0\r\n.\r\n250 OK\r\n',
        true,
      );
    });
    expect(await client.getInfo('config-text')).toBe('ControlPort 9051\n.hidden\nSocksPort 0');
    await fake.done;
    client.destroy();
    await fake.close();
  });

  it('times a command out with ERR_TOR_TIMEOUT and closes the connection', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('GETINFO version');
      await conn.expectLine('GETINFO config-file');
      await conn.ended;
    });
    const first = client.command('GETINFO version', { timeoutMs: 50 });
    const second = client.command('GETINFO config-file');
    const err = await rejection(first);
    expectCode(err, 'ERR_TOR_TIMEOUT');
    expect(err.message).toContain('GETINFO');
    expectCode(await rejection(second), 'ERR_TOR_CONTROL');
    expect(await client.closed).toBe(err);
    await fake.done;
    expectCode(await rejection(client.command('GETINFO version')), 'ERR_TOR_CONTROL');
    await fake.close();
  });

  it('refuses commands containing CR, LF or NUL before writing anything', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('GETINFO version');
      await conn.send('250-version=1\r\n250 OK\r\n');
    });
    for (const line of ['GETINFO version\r\nSIGNAL HALT', 'SETCONF a=b\nQUIT', 'X\0Y', '']) {
      expectCode(await rejection(client.command(line)), 'ERR_TOR_COMMAND');
    }
    expectCode(await rejection(client.setEvents(['HS_DESC\r\nSIGNAL HALT'])), 'ERR_TOR_COMMAND');
    expect(await client.getVersion()).toBe('1');
    await fake.done;
    expect((await fake.conn).received).toBe('GETINFO version\r\n');
    client.destroy();
    await fake.close();
  });

  it('resolves closed with ERR_TOR_CONTROL and rejects pending commands when tor goes away', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('GETINFO version');
      await conn.send('250-version=0.4.9');
      conn.socket.end();
    });
    const pending = client.command('GETINFO version');
    expectCode(await rejection(pending), 'ERR_TOR_CONTROL');
    expectCode(await client.closed, 'ERR_TOR_CONTROL');
    expect(client.isClosed).toBe(true);
    await fake.done;
    await fake.close();
  });

  it('closes on a reply to no command', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.send('250 OK\r\n');
    });
    expectCode(await client.closed, 'ERR_TOR_CONTROL');
    await fake.done;
    await fake.close();
  });

  it('closes on a malformed reply line', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('GETINFO version');
      await conn.send('HTTP/1.0 400 Bad Request\r\n');
    });
    expectCode(await rejection(client.getVersion()), 'ERR_TOR_CONTROL');
    expectCode(await client.closed, 'ERR_TOR_CONTROL');
    await fake.done;
    await fake.close();
  });

  it('close() sends QUIT, waits for tor to close, and is idempotent', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('QUIT');
      await conn.send('250 closing connection\r\n');
      conn.socket.end();
      await conn.ended;
    });
    const a = client.close();
    const b = client.close();
    await Promise.all([a, b]);
    expect(await client.closed).toBeUndefined();
    expectCode(await rejection(client.command('GETINFO version')), 'ERR_TOR_CONTROL');
    await fake.done;
    expect((await fake.conn).received).toBe('QUIT\r\n');
    await fake.close();
  });

  it('close() ends the connection even when tor does not answer QUIT', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('QUIT');
      await conn.ended;
    });
    await client.close();
    expect(client.isClosed).toBe(true);
    await fake.done;
    await fake.close();
  });

  it('destroy(err) rejects pending commands and resolves closed with err', async () => {
    const { fake, client } = await connected(async (conn) => {
      await conn.expectLine('GETINFO version');
      await conn.ended;
    });
    const pending = client.command('GETINFO version');
    const reason = new Error('shutting down');
    client.destroy(reason);
    client.destroy(new Error('second call is ignored'));
    const err = await rejection(pending);
    expectCode(err, 'ERR_TOR_CONTROL');
    expect(err.cause).toBe(reason);
    expect(await client.closed).toBe(reason);
    await fake.close();
  });
});

describe('onion services over the control port', () => {
  const SERVICE_ID = 'a'.repeat(52) + 'bcdq';
  const KEY_BLOB = `${'K'.repeat(86)}==`;

  it('formats ADD_ONION exactly as docs/protocol.md §8.1 and §8.5 give it', () => {
    expect(
      formatAddOnion({
        key: { kind: 'new' },
        virtualPort: 5222,
        target: { host: '127.0.0.1', port: 8080 },
        discardPk: true,
      }),
    ).toBe('ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK');
    expect(
      formatAddOnion({
        key: { kind: 'new' },
        virtualPort: 5222,
        target: { host: '127.0.0.1', port: 5222 },
        discardPk: true,
        pow: { queueRate: 25, queueBurst: 250 },
      }),
    ).toBe(
      'ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:5222 Flags=DiscardPK PoWDefensesEnabled=1 PoWQueueRate=25 PoWQueueBurst=250',
    );
    expect(
      formatAddOnion({
        key: { kind: 'ed25519-v3', keyBlob: KEY_BLOB },
        virtualPort: 5222,
        target: { path: '/run/onionmc/onion.sock' },
        discardPk: false,
      }),
    ).toBe(`ADD_ONION ED25519-V3:${KEY_BLOB} Port=5222,unix:/run/onionmc/onion.sock`);
    expect(
      formatAddOnion({
        key: { kind: 'new' },
        virtualPort: 5222,
        target: { host: '::1', port: 8080 },
        discardPk: false,
      }),
    ).toBe('ADD_ONION NEW:ED25519-V3 Port=5222,[::1]:8080');
  });

  it.each([
    ['virtual port 0', { virtualPort: 0 }],
    ['virtual port 65536', { virtualPort: 65536 }],
    ['target port 1.5', { target: { host: '127.0.0.1', port: 1.5 } }],
    ['host with a space', { target: { host: '127.0.0.1 Flags=Detach', port: 1 } }],
    ['relative unix path', { target: { path: 'onion.sock' } }],
    ['unix path with a comma', { target: { path: '/a,b' } }],
    ['short key blob', { key: { kind: 'ed25519-v3', keyBlob: 'AAAA' } }],
    ['key blob with a space', { key: { kind: 'ed25519-v3', keyBlob: `${'K'.repeat(85)} ==` } }],
    ['PoW rate 0', { pow: { queueRate: 0, queueBurst: 1 } }],
  ])('refuses %s with ERR_TOR_COMMAND', (_name, override) => {
    let thrown: unknown;
    try {
      formatAddOnion({
        key: { kind: 'new' },
        virtualPort: 5222,
        target: { host: '127.0.0.1', port: 8080 },
        discardPk: true,
        ...(override as object),
      });
    } catch (err) {
      thrown = err;
    }
    expectCode(thrown, 'ERR_TOR_COMMAND');
  });

  it('sends ADD_ONION and DEL_ONION byte for byte and parses the answers', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK');
      await conn.send(`250-ServiceID=${SERVICE_ID}\r\n250 OK\r\n`, true);
      await conn.expectLine('ADD_ONION NEW:ED25519-V3 Port=5222,unix:/tmp/x.sock');
      await conn.send(
        `250-ServiceID=${SERVICE_ID}\r\n250-PrivateKey=ED25519-V3:${KEY_BLOB}\r\n250 OK\r\n`,
      );
      await conn.expectLine(`DEL_ONION ${SERVICE_ID}`);
      await conn.send('250 OK\r\n');
      await conn.expectLine(`DEL_ONION ${SERVICE_ID}`);
      await conn.send('552 Unknown Onion Service id\r\n');
      await conn.expectLine('ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK');
      await conn.send('250-ServiceID=tooshort\r\n250 OK\r\n');
    });
    const client = await TorControlClient.connect(fake.endpoint);
    const base = {
      virtualPort: 5222,
      target: { host: '127.0.0.1', port: 8080 },
      key: { kind: 'new' },
    } as const;
    expect(await addOnion(client, { ...base, discardPk: true })).toEqual({
      serviceId: SERVICE_ID,
    });
    expect(
      await addOnion(client, { ...base, target: { path: '/tmp/x.sock' }, discardPk: false }),
    ).toEqual({ serviceId: SERVICE_ID, privateKey: KEY_BLOB });
    await delOnion(client, `${SERVICE_ID}.onion`);
    const err = await rejection(delOnion(client, SERVICE_ID));
    expectCode(err, 'ERR_TOR_COMMAND');
    expect(err.status).toBe(552);
    expectCode(await rejection(addOnion(client, { ...base, discardPk: true })), 'ERR_TOR_CONTROL');
    expectCode(await rejection(delOnion(client, 'not-an-id')), 'ERR_TOR_COMMAND');
    await fake.done;
    expect((await fake.conn).received).toBe(
      'ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK\r\n' +
        'ADD_ONION NEW:ED25519-V3 Port=5222,unix:/tmp/x.sock\r\n' +
        `DEL_ONION ${SERVICE_ID}\r\n` +
        `DEL_ONION ${SERVICE_ID}\r\n` +
        'ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK\r\n',
    );
    client.destroy();
    await fake.close();
  });

  it('catches an HS_DESC UPLOADED that arrives in the same packet as the ADD_ONION reply', async () => {
    const other = 'b'.repeat(56);
    const fake = await startFake(async (conn) => {
      await conn.expectLine('SETEVENTS HS_DESC');
      await conn.send('250 OK\r\n');
      await conn.expectLine('ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK');
      await conn.send(
        `250-ServiceID=${SERVICE_ID}\r\n250 OK\r\n` +
          `650 HS_DESC UPLOAD ${SERVICE_ID} UNKNOWN $AA~r1\r\n` +
          `650 HS_DESC UPLOADED ${other} UNKNOWN $BB~r2\r\n` +
          `650 HS_DESC UPLOADED ${SERVICE_ID} UNKNOWN $CC~r3\r\n` +
          `650 HS_DESC UPLOADED ${SERVICE_ID} UNKNOWN $DD~r4\r\n`,
      );
    });
    const client = await TorControlClient.connect(fake.endpoint);
    const uploads = await watchDescriptorUploads(client);
    expect(client.events).toEqual(['HS_DESC']);
    const { serviceId } = await addOnion(client, {
      key: { kind: 'new' },
      virtualPort: 5222,
      target: { host: '127.0.0.1', port: 8080 },
      discardPk: true,
    });
    await fake.done;
    // The events are in: wait for them through a second wait that must resolve.
    expect(await uploads.wait(other)).toBe('$BB~r2');
    expect(await uploads.wait(serviceId)).toBe('$CC~r3');
    uploads.stop();
    expectCode(await rejection(uploads.wait('c'.repeat(56))), 'ERR_TOR_CONTROL');
    client.destroy();
    await fake.close();
  });

  it('waitForDescriptorUpload resolves on a later event, times out, aborts, and ends with the connection', async () => {
    const fake = await startFake(async (conn) => {
      await conn.expectLine('SETEVENTS HS_DESC');
      await conn.send('250 OK\r\n');
      await conn.send(`650 HS_DESC UPLOADED ${SERVICE_ID} UNKNOWN $CC~r3\r\n`, true);
      await conn.ended;
    });
    const client = await TorControlClient.connect(fake.endpoint);
    expect(await waitForDescriptorUpload(client, `${SERVICE_ID}.onion`)).toBe('$CC~r3');
    // HS_DESC is subscribed now: no second SETEVENTS is sent.
    expectCode(
      await rejection(waitForDescriptorUpload(client, 'c'.repeat(56), { timeoutMs: 30 })),
      'ERR_TOR_TIMEOUT',
    );
    const controller = new AbortController();
    const aborted = waitForDescriptorUpload(client, 'c'.repeat(56), { signal: controller.signal });
    controller.abort(new Error('stop'));
    expectCode(await rejection(aborted), 'ERR_TOR_CONTROL');
    const orphan = waitForDescriptorUpload(client, 'c'.repeat(56));
    (await fake.conn).socket.destroy();
    expectCode(await rejection(orphan), 'ERR_TOR_CONTROL');
    expect((await fake.conn).received).toBe('SETEVENTS HS_DESC\r\n');
    await fake.close();
  });
});

describe('torSupportsPow', () => {
  it.each([
    ['0.4.9.2', true],
    ['0.4.9.2-alpha', true],
    ['0.4.9.11', true],
    ['0.4.9.11 (git-0123456789abcdef)', true],
    ['Tor version 0.4.9.11.', true],
    ['0.4.10.1-alpha-dev', true],
    ['0.5.0.1', true],
    ['1.0.0', true],
    ['0.4.9.1-alpha', false],
    ['0.4.8.17', false],
    ['0.3.5.19', false],
    ['0.4.9', false],
    ['garbage', false],
    ['', false],
  ])('%j -> %s', (version, expected) => {
    expect(torSupportsPow(version)).toBe(expected);
  });
});
