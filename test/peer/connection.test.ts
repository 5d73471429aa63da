/**
 * PeerConnection over loopback: per-turn coalesced writes (one socket write per event-loop turn,
 * bytes unchanged), the per-peer queue cap (a slow reader is destroyed with a reason, others go
 * on), close vs destroy (idempotent, onClose once), the handshake deadline and liveness advice.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import {
  CONCAT_MAX_BYTES,
  flushAllConnections,
  PeerConnection,
  type CloseReason,
} from '../../src/peer/connection.js';
import { canonicalFrame, encodeEnvelope } from '../../src/wire/envelope.js';
import { frameArena } from '../../src/peer/frame-arena.js';
import { encodeLine } from '../../src/wire/framing.js';
import { INBOX_PAUSE_BYTES } from '../../src/peer/fair-reader.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A connected loopback pair: `ours` (to wrap in a PeerConnection) and `theirs`. */
async function socketPair(): Promise<{ ours: net.Socket; theirs: net.Socket }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const ours = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) =>
    ours.once('connect', () => {
      resolve();
    }),
  );
  const theirs = await accepted;
  server.close();
  cleanups.push(() => {
    ours.destroy();
    theirs.destroy();
  });
  return { ours, theirs };
}

/** Counts the socket's write() calls and keeps what each wrote. */
function recordWrites(socket: net.Socket): Buffer[] {
  const writes: Buffer[] = [];
  const target = socket as unknown as { write: (chunk: Uint8Array) => boolean };
  const write = target.write.bind(socket);
  target.write = (chunk) => {
    writes.push(Buffer.from(chunk));
    return write(chunk);
  };
  return writes;
}

function readAll(socket: net.Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= bytes) {
        socket.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on('data', onData);
  });
}

const frame = (type: number, line: string): Uint8Array => encodeLine(encodeEnvelope(type, line));

function open(
  socket: net.Socket,
  options: { maxQueuedBytes?: number; now?: () => number } = {},
): { conn: PeerConnection; closes: { reason: CloseReason; err: Error | undefined }[] } {
  const conn = new PeerConnection(socket, {
    direction: 'inbound',
    logger: silentLogger(),
    ...options,
  });
  const closes: { reason: CloseReason; err: Error | undefined }[] = [];
  conn.start({
    onEnvelope: () => undefined,
    onClose: (err, reason) => closes.push({ reason, err }),
  });
  return { conn, closes };
}

describe('PeerConnection writes', () => {
  it('sends everything queued in one turn in one socket write, byte for byte', async () => {
    const { ours, theirs } = await socketPair();
    const writes = recordWrites(ours);
    const { conn } = open(ours);
    const a = frame(687, 'J5aaaaaaaaaaaaaa!J5bbbbbbbbbbbbbb!hp2 x');
    const b = frame(789, 'J5dddddddddddddd;127.0.0.1:1');
    conn.sendEncoded(a);
    conn.sendEncoded(b);
    expect(writes).toHaveLength(0); // nothing before the turn ends
    const expected = Buffer.concat([a, b]);
    expect(await readAll(theirs, expected.length)).toEqual(expected);
    expect(writes).toEqual([expected]);
  });

  it('writes the same frame buffer to several connections (a broadcast encoded once)', async () => {
    const one = await socketPair();
    const two = await socketPair();
    const writesOne = recordWrites(one.ours);
    const writesTwo = recordWrites(two.ours);
    const a = open(one.ours).conn;
    const b = open(two.ours).conn;
    const shared = frame(687, 'J5aaaaaaaaaaaaaa!PUBLIC!orderbook');
    a.sendEncoded(shared);
    b.sendEncoded(shared);
    await readAll(one.theirs, shared.length);
    await readAll(two.theirs, shared.length);
    expect(writesOne).toEqual([Buffer.from(shared)]);
    expect(writesTwo).toEqual([Buffer.from(shared)]);
  });

  it('destroys a peer that does not read past the queue cap, and only that peer', async () => {
    const slow = await socketPair();
    const fast = await socketPair();
    slow.theirs.pause();
    const cap = 64 * 1024;
    const s = open(slow.ours, { maxQueuedBytes: cap });
    const f = open(fast.ours, { maxQueuedBytes: cap });
    const line = frame(687, `J5aaaaaaaaaaaaaa!PUBLIC!hp2 ${'x'.repeat(1000)}`);
    let sent = 0;
    // Bounded: at most 10 MB offered; the slow peer must be cut off long before.
    for (let i = 0; i < 10_000 && s.conn.isOpen; i++) {
      s.conn.sendEncoded(line);
      sent++;
      if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(s.conn.isOpen).toBe(false);
    expect(s.closes.map((c) => c.reason)).toEqual(['slow-reader']);
    expect((s.closes[0]?.err as { code?: string }).code).toBe('ERR_SLOW_READER');
    expect(sent * line.length).toBeLessThan(cap * 64);
    expect(f.conn.sendEncoded(line)).toBe(true);
    expect(await readAll(fast.theirs, line.length)).toEqual(Buffer.from(line));
    expect(f.conn.isOpen).toBe(true);
  });
});

describe('PeerConnection queue cap within one turn', () => {
  it('takes frames up to exactly the cap in a turn and destroys at the first byte over', async () => {
    const { ours } = await socketPair();
    const writes = recordWrites(ours);
    const line = frame(687, `J5aaaaaaaaaaaaaa!PUBLIC!hp2 ${'x'.repeat(100)}`);
    const { conn, closes } = open(ours, { maxQueuedBytes: 3 * line.length });
    expect(conn.sendEncoded(line)).toBe(true);
    expect(conn.sendEncoded(line)).toBe(true);
    expect(conn.sendEncoded(line)).toBe(true);
    expect(conn.queuedBytes).toBe(3 * line.length);
    expect(conn.sendEncoded(frame(789, ''))).toBe(false);
    expect(closes.map((c) => c.reason)).toEqual(['slow-reader']);
    // Destroyed in the turn: what was queued is dropped, never written.
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(0);
  });

  it('sends again after an early flush() in the same turn, each byte once and in order', async () => {
    const { ours, theirs } = await socketPair();
    const writes = recordWrites(ours);
    const { conn } = open(ours);
    const a = frame(687, 'J5aaaaaaaaaaaaaa!PUBLIC!one');
    const b = frame(687, 'J5aaaaaaaaaaaaaa!PUBLIC!two');
    conn.sendEncoded(a);
    conn.flush();
    conn.sendEncoded(b);
    const expected = Buffer.concat([a, b]);
    expect(await readAll(theirs, expected.length)).toEqual(expected);
    expect(writes).toEqual([Buffer.from(a), Buffer.from(b)]);
  });
});

describe('PeerConnection big turns and peers that are behind', () => {
  it('does not cut a peer that reads when one turn relays more than the queue cap', async () => {
    const { ours, theirs } = await socketPair();
    const cap = 1024 * 1024;
    const { conn, closes } = open(ours, { maxQueuedBytes: cap });
    const line = frame(687, `J5aaaaaaaaaaaaaa!PUBLIC!big ${'x'.repeat(39_000)}`);
    const count = Math.ceil((3 * cap) / line.length);
    const received = readAll(theirs, count * line.length);
    // One turn, three times the cap: written as it grows (FLUSH_EARLY_BYTES), not held to the end.
    for (let i = 0; i < count; i++) expect(conn.sendEncoded(line)).toBe(true);
    expect(conn.isOpen).toBe(true);
    expect((await received).length).toBe(count * line.length);
    expect(closes).toEqual([]);
  });

  it('queues the frames themselves, not a copy, for a peer whose socket is behind', async () => {
    const { ours, theirs } = await socketPair();
    theirs.pause();
    const { conn } = open(ours, { maxQueuedBytes: 64 * 1024 * 1024 });
    const big = frame(687, `J5aaaaaaaaaaaaaa!PUBLIC!fill ${'x'.repeat(39_000)}`);
    // Fill the kernel's buffers until the socket keeps bytes of its own (bounded: 64 MB at most).
    for (let i = 0; i < 1_600 && ours.writableLength === 0; i++) {
      conn.sendEncoded(big);
      conn.flush();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(ours.writableLength).toBeGreaterThan(0);
    const written: Uint8Array[] = [];
    const target = ours as unknown as { write: (chunk: Uint8Array) => boolean };
    const write = target.write.bind(ours);
    target.write = (chunk) => {
      written.push(chunk);
      return write(chunk);
    };
    const a = frame(687, 'J5aaaaaaaaaaaaaa!PUBLIC!one');
    const b = frame(687, 'J5aaaaaaaaaaaaaa!PUBLIC!two');
    conn.sendEncoded(a);
    conn.sendEncoded(b);
    conn.flush();
    expect(written).toHaveLength(2);
    expect(written[0]).toBe(a);
    expect(written[1]).toBe(b);
  });
});

describe('PeerConnection big turns: the frames themselves, in one vectored write', () => {
  it('writes a big turn of shared broadcast frames uncopied, corked, byte for byte', async () => {
    const { ours, theirs } = await socketPair();
    const { conn } = open(ours);
    const written: { chunk: Uint8Array; corked: boolean }[] = [];
    const target = ours as unknown as { write: (chunk: Uint8Array) => boolean };
    const write = target.write.bind(ours);
    target.write = (chunk) => {
      written.push({ chunk, corked: ours.writableCorked > 0 });
      return write(chunk);
    };
    const a = frame(687, `J5aaaaaaaaaaaaaa!PUBLIC!one ${'x'.repeat(39_000)}`);
    const b = frame(687, `J5bbbbbbbbbbbbbb!PUBLIC!two ${'y'.repeat(39_000)}`);
    expect(a.length + b.length).toBeGreaterThan(CONCAT_MAX_BYTES);
    const expected = Buffer.concat([a, b]);
    const received = readAll(theirs, expected.length);
    conn.sendEncoded(a, true);
    conn.sendEncoded(b, true);
    conn.flush();
    // The very Buffers every recipient shares, not a copy per peer; corked, so one writev.
    expect(written.map((w) => w.chunk)).toEqual([a, b]);
    expect(written[0]?.chunk).toBe(a);
    expect(written[1]?.chunk).toBe(b);
    expect(written.every((w) => w.corked)).toBe(true);
    expect(ours.writableCorked).toBe(0);
    expect(await received).toEqual(expected);
  });
});

describe('PeerConnection and the frame arena (relayed privmsgs)', () => {
  const privmsg = (text: string): Buffer =>
    Buffer.from(encodeEnvelope(685, `J5aaaaaaaaaaaaaa!J5bbbbbbbbbbbbbb!${text}`));

  it('gives written and dropped frames back, so the slab is reused from its start', async () => {
    const { ours, theirs } = await socketPair();
    const { conn } = open(ours);
    const raws = ['one', 'two', 'three'].map(privmsg);
    const expected = Buffer.concat(raws.map((raw) => canonicalFrame(raw)));
    const received = readAll(theirs, expected.length);
    for (const raw of raws) conn.sendEncoded(canonicalFrame(raw, undefined, frameArena));
    expect(frameArena.outstanding).toBe(3);
    conn.flush();
    expect(frameArena.outstanding).toBe(0);
    expect(frameArena.used).toBe(0);
    expect(await received).toEqual(expected);
    // Dropped unsent (the connection is gone): given back too.
    conn.destroy();
    expect(conn.sendEncoded(canonicalFrame(raws[0] as Buffer, undefined, frameArena))).toBe(false);
    expect(frameArena.outstanding).toBe(0);
  });

  it('never reuses slab memory that a socket still holds (a peer that is behind)', async () => {
    const { ours, theirs } = await socketPair();
    theirs.pause();
    const { conn } = open(ours, { maxQueuedBytes: 64 * 1024 * 1024 });
    const big = frame(687, `J5aaaaaaaaaaaaaa!PUBLIC!fill ${'x'.repeat(39_000)}`);
    let filler = 0;
    // Fill the kernel's buffers until the socket keeps bytes of its own (bounded: 64 MB at most).
    for (let i = 0; i < 1_600 && ours.writableLength === 0; i++) {
      conn.sendEncoded(big);
      conn.flush();
      filler += big.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(ours.writableLength).toBeGreaterThan(0);
    // Same length, other bytes: carved at the same offset if the slab were reused too early.
    const first = privmsg('AAAAAAAA');
    const second = privmsg('BBBBBBBB');
    conn.sendEncoded(canonicalFrame(first, undefined, frameArena));
    conn.flush();
    conn.sendEncoded(canonicalFrame(second, undefined, frameArena));
    conn.flush();
    const tail = Buffer.concat([canonicalFrame(first), canonicalFrame(second)]);
    const received = readAll(theirs, filler + tail.length);
    theirs.resume();
    expect((await received).subarray(filler)).toEqual(tail);
  });
});

describe('PeerConnection queue cap after the socket drained', () => {
  it('takes a frame that fits only because the peer read what the socket held', async () => {
    const { ours, theirs } = await socketPair();
    theirs.pause();
    // Fill the kernel's buffers until the socket keeps bytes of its own (bounded: 64 MB at most).
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    let filled = 0;
    for (let i = 0; i < 1_000 && ours.writableLength === 0; i++) {
      ours.write(chunk);
      filled += chunk.length;
    }
    const held = ours.writableLength;
    expect(held).toBeGreaterThan(8 * 1024);
    // The cap leaves 1,000 bytes beside what the socket holds now: too little for the frame below
    // until the peer reads.
    const { conn, closes } = open(ours, { maxQueuedBytes: held + 1_000 });
    const drained = new Promise((resolve) => ours.once('drain', resolve));
    const received = readAll(theirs, filled);
    theirs.resume();
    await received;
    await drained;
    expect(ours.writableLength).toBe(0);
    const next = frame(687, `J5aaaaaaaaaaaaaa!PUBLIC!next ${'x'.repeat(4_000)}`);
    expect(next.length).toBeGreaterThan(1_000);
    const tail = readAll(theirs, next.length);
    expect(conn.sendEncoded(next)).toBe(true);
    expect(await tail).toEqual(Buffer.from(next));
    expect(closes).toEqual([]);
  });
});

describe('PeerConnection flush order', () => {
  it('writes the connections with little to write before those with a big turn', async () => {
    const big = await socketPair();
    const small = await socketPair();
    const order: string[] = [];
    for (const [name, socket] of [
      ['big', big.ours],
      ['small', small.ours],
    ] as const) {
      const target = socket as unknown as { write: (chunk: Uint8Array) => boolean };
      const write = target.write.bind(socket);
      target.write = (chunk) => {
        // A big turn is several corked write() calls (one writev): one entry per connection.
        if (order.at(-1) !== name) order.push(name);
        return write(chunk);
      };
    }
    const b = open(big.ours);
    const s = open(small.ours);
    // The big turn is queued first: 5 lines of 20 kB.
    for (let i = 0; i < 5; i++)
      b.conn.sendEncoded(frame(687, `J5aaaaaaaaaaaaaa!PUBLIC!big ${'x'.repeat(20_000)}`));
    s.conn.sendEncoded(frame(685, 'J5aaaaaaaaaaaaaa!J5bbbbbbbbbbbbbb!tx small'));
    flushAllConnections();
    expect(order).toEqual(['small', 'big']);
  });
});

describe('PeerConnection life', () => {
  it('close() flushes what was queued, then ends; close and destroy are idempotent', async () => {
    const { ours, theirs } = await socketPair();
    const { conn, closes } = open(ours);
    const a = frame(795, '{}');
    conn.sendEncoded(a);
    conn.close('rejected');
    conn.close();
    conn.destroy('protocol-violation');
    expect(closes.map((c) => c.reason)).toEqual(['rejected']);
    expect(conn.sendEncoded(a)).toBe(false);
    const ended = new Promise<void>((resolve) =>
      theirs.once('end', () => {
        resolve();
      }),
    );
    expect(await readAll(theirs, a.length)).toEqual(Buffer.from(a));
    await ended;
  });

  it('destroys with handshake-timeout when the deadline passes, unless handshakeDone()', async () => {
    const one = await socketPair();
    const two = await socketPair();
    const late = open(one.ours);
    const done = open(two.ours);
    late.conn.armHandshakeDeadline(20);
    done.conn.armHandshakeDeadline(20);
    done.conn.handshakeDone();
    await new Promise<void>((resolve) =>
      one.theirs.once('close', () => {
        resolve();
      }),
    );
    expect(late.closes.map((c) => c.reason)).toEqual(['handshake-timeout']);
    expect(done.conn.isOpen).toBe(true);
  });

  it('advises probe, waiting and dead from the injected clock', async () => {
    const { ours, theirs } = await socketPair();
    let now = 1_000;
    const { conn } = open(ours, { now: () => now });
    const policy = { probeIdleMs: 100, pongTimeoutMs: 10, evictIdleMs: 1_000 };
    expect(conn.liveness(now, policy)).toBe('alive');
    now += 100;
    expect(conn.liveness(now, policy)).toBe('probe');
    conn.markProbed(now);
    expect(conn.liveness(now + 5, policy)).toBe('waiting');
    expect(conn.liveness(now + 10, policy)).toBe('dead');
    // An answer (any line) after the probe clears it.
    now += 5;
    const received = new Promise<void>((resolve) => {
      const check = (): void => {
        if (conn.lastReceivedAt === now) resolve();
        else setImmediate(check);
      };
      check();
    });
    theirs.write('{"type": 799, "line": ""}\r\n');
    await received;
    expect(conn.liveness(now + 10, policy)).toBe('alive');
  });
});

/**
 * Starts `conn`, has the other end write `count` copies of `line` at once, and resolves once
 * `count` envelopes were handled or the connection closed; `onEach` runs for each envelope.
 * @returns how many envelopes were handled.
 */
async function handleWritten(
  conn: PeerConnection,
  theirs: net.Socket,
  line: Uint8Array,
  count: number,
  onEach: () => void = () => undefined,
): Promise<number> {
  let handled = 0;
  await new Promise<void>((resolve) => {
    conn.start({
      onEnvelope: () => {
        onEach();
        if (++handled === count) resolve();
      },
      onClose: () => {
        resolve();
      },
    });
    theirs.write(Buffer.concat(Array.from({ length: count }, () => line)));
  });
  return handled;
}

describe('PeerConnection reads', () => {
  it('skips a line its owner does not admit without decoding it', async () => {
    const { ours, theirs } = await socketPair();
    const conn = new PeerConnection(ours, { direction: 'inbound', logger: silentLogger() });
    const lines: string[] = [];
    let admit = 0;
    let closedWith: CloseReason | undefined;
    let done: () => void = () => undefined;
    const twoLines = new Promise<void>((resolve) => (done = resolve));
    conn.start({
      // The second line is refused: it is not JSON, which would be a protocol violation if decoded.
      admitLine: () => admit++ !== 1,
      onEnvelope: (envelope) => {
        if (lines.push(envelope.line) === 2) done();
      },
      onClose: (_err, reason) => {
        closedWith = reason;
        done();
      },
    });
    const good = (text: string): string => encodeLine(encodeEnvelope(685, text)).toString('latin1');
    theirs.write(good('one') + 'not json at all\r\n' + good('three'));
    await twoLines;
    expect(lines).toEqual(['one', 'three']);
    expect(admit).toBe(3);
    expect(closedWith).toBeUndefined();
    expect(conn.isOpen).toBe(true);
  });

  it('ends a turn after the line that spends its time slice, however few lines it handled', async () => {
    const { ours, theirs } = await socketPair();
    const conn = new PeerConnection(ours, { direction: 'inbound', logger: silentLogger() });
    const handled: string[] = [];
    let beforeNextIteration: number | undefined;
    const all = new Promise<void>((resolve) => {
      conn.start({
        onEnvelope: (envelope) => {
          if (handled.length === 0)
            setImmediate(() => {
              beforeNextIteration = handled.length;
            });
          handled.push(envelope.line);
          // A costly line (a pubmsg relayed to many peers): 1.5 ms, more than the 1 ms slice.
          const until = performance.now() + 1.5;
          while (performance.now() < until);
          if (handled.length === 16) resolve();
        },
        onClose: () => undefined,
      });
    });
    const lines = Array.from({ length: 16 }, (_, i) => `J5aaaaaaaaaaaaaa!PUBLIC!n ${i}`);
    theirs.write(Buffer.concat(lines.map((line) => frame(687, line))));
    await all;
    // One line on arrival, then the rest one per round, other connections served in between.
    expect(beforeNextIteration).toBe(1);
    expect(handled).toEqual(lines);
  });

  it('keeps a backlog undecoded and bounded: the socket is paused past INBOX_PAUSE_BYTES', async () => {
    const { ours, theirs } = await socketPair();
    const conn = new PeerConnection(ours, { direction: 'inbound', logger: silentLogger() });
    let maxInbox = 0;
    // 4 MB in one go: far more than one socket read and the pause threshold.
    const line = encodeLine(encodeEnvelope(685, 'x'.repeat(180)));
    const count = Math.ceil((4 * 1024 * 1024) / line.length);
    const handled = await handleWritten(conn, theirs, line, count, () => {
      maxInbox = Math.max(maxInbox, conn.inboxBytes);
    });
    expect(handled).toBe(count);
    // What waits is the pause threshold plus the socket reads already under way (64 KiB each),
    // never the megabytes the peer sent.
    expect(maxInbox).toBeLessThanOrEqual(INBOX_PAUSE_BYTES + 2 * 65_536);
    expect(conn.inboxBytes).toBe(0);
  });

  it('reads a peer over its read rate slower, in order, dropping nothing', async () => {
    const { ours, theirs } = await socketPair();
    const rate = { ratePerSecond: 1_000_000, burst: 65_536 };
    // The read rate's clock (src/peer/connection.ts), read before its bucket is made.
    const started = performance.now();
    const conn = new PeerConnection(ours, {
      direction: 'inbound',
      logger: silentLogger(),
      readRate: rate,
    });
    const count = 40; // 400 kB: six times the burst
    const lines = Array.from({ length: count }, (_, i) =>
      encodeLine(encodeEnvelope(685, `${String(i).padStart(2, '0')} ${'z'.repeat(10_000)}`)),
    );
    const lineBytes = (lines[0] as Uint8Array).length - 2; // charged without its CRLF
    const order: number[] = [];
    let handled = 0;
    const waits: number[] = [];
    let overRate = 0;
    const all = new Promise<void>((resolve) => {
      conn.start({
        onEnvelope: (envelope) => {
          order.push(Number(envelope.line.slice(0, 2)));
          // Every line is handled only when what came before fits the burst plus the rate since
          // the bucket was made.
          const allowed = rate.burst + (rate.ratePerSecond * (performance.now() - started)) / 1000;
          if (handled * lineBytes > allowed) overRate++;
          if (++handled === count) resolve();
        },
        onThrottled: (waitMs) => waits.push(waitMs),
        onClose: () => undefined,
      });
    });
    theirs.write(Buffer.concat(lines));
    await all;
    expect(order).toEqual(lines.map((_, i) => i));
    expect(overRate).toBe(0);
    expect(waits.length).toBeGreaterThan(0);
    expect(Math.min(...waits)).toBeGreaterThan(0);
    expect(conn.isOpen).toBe(true);
    expect(conn.inboxBytes).toBe(0);
  });

  it('reads on when what waits is the start of a line longer than the pause threshold', async () => {
    const { ours, theirs } = await socketPair();
    const conn = new PeerConnection(ours, { direction: 'inbound', logger: silentLogger() });
    // Lines of 30,000 bytes: after the complete ones are handled, the start of the next one alone
    // is more than INBOX_PAUSE_BYTES, and only more reading can complete it.
    const line = encodeLine(encodeEnvelope(685, 'y'.repeat(30_000)));
    const count = 200;
    expect(await handleWritten(conn, theirs, line, count)).toBe(count);
    expect(conn.isOpen).toBe(true);
  });
});
