/**
 * The connection layer's write scheduler (src/peer/connection.ts FlushScheduler): connections sent
 * a frame of their own are written before those sent only broadcast copies, broadcasts are written
 * in time slices in the order they were queued, and nothing is left unwritten. The clock is
 * injected and advanced by each write, so slices are exact; `flush` records the order.
 */
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  BROADCAST_SLICE_MS,
  FlushScheduler,
  SMALL_FLUSH_BYTES,
  type Flushable,
} from '../../src/peer/connection.js';

/** A clock that a write advances by `writeMs`, and writables that log their flushes. */
function setup(writeMs: number): {
  scheduler: FlushScheduler;
  make: (name: string, pendingBytes?: number) => Flushable & { pendingBytes: number };
  written: string[];
} {
  let clock = 0;
  const written: string[] = [];
  const scheduler = new FlushScheduler(() => clock);
  const make = (name: string, pendingBytes = 100): Flushable & { pendingBytes: number } => {
    const w = {
      pendingBytes,
      flush(): void {
        if (w.pendingBytes === 0) return;
        w.pendingBytes = 0;
        written.push(name);
        clock += writeMs;
      },
    };
    return w;
  };
  return { scheduler, make, written };
}

const nextIteration = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('FlushScheduler', () => {
  it('writes a connection sent its own frame before the broadcast copies queued earlier', () => {
    const { scheduler, make, written } = setup(0.01);
    for (let i = 0; i < 100; i++) scheduler.add(make(`b${i}`), false);
    scheduler.add(make('privmsg'), true);
    scheduler.flushAll(true);
    expect(written[0]).toBe('privmsg');
    expect(written).toHaveLength(101);
  });

  it('writes broadcasts in slices of BROADCAST_SLICE_MS, in order, the rest in the next iterations', async () => {
    const writeMs = 0.05;
    const { scheduler, make, written } = setup(writeMs);
    const n = 400; // 20 ms of writes
    for (let i = 0; i < n; i++) scheduler.add(make(`b${i}`), false);
    scheduler.flushAll(true);
    const first = written.length;
    // A slice ends with the write that reaches its time.
    expect(first).toBe(Math.ceil(BROADCAST_SLICE_MS / writeMs));
    // An urgent connection queued meanwhile goes before the rest of the broadcasts.
    scheduler.add(make('privmsg'), true);
    await nextIteration();
    expect(written[first]).toBe('privmsg');
    for (let k = 0; k < 40 && written.length < n + 1; k++) await nextIteration();
    expect(written).toHaveLength(n + 1);
    expect(written.filter((w) => w !== 'privmsg')).toEqual(
      Array.from({ length: n }, (_, i) => `b${i}`),
    );
  });

  it('promotes a connection that already waits with broadcasts when it is sent its own frame', () => {
    const { scheduler, make, written } = setup(0.05);
    const conns = Array.from({ length: 200 }, (_, i) => make(`b${i}`));
    for (const c of conns) scheduler.add(c, false);
    scheduler.promote(conns[199]!);
    scheduler.flushAll(true);
    expect(written[0]).toBe('b199');
  });

  it('writes everything at once when not sliced (shutdown, tests)', () => {
    const { scheduler, make, written } = setup(1);
    for (let i = 0; i < 100; i++) scheduler.add(make(`b${i}`), false);
    scheduler.add(make('big', SMALL_FLUSH_BYTES + 1), true);
    scheduler.add(make('small'), true);
    scheduler.flushAll();
    expect(written.slice(0, 2)).toEqual(['small', 'big']);
    expect(written).toHaveLength(102);
  });

  it('hands each urgent connection the socket it was listed with, a promoted one included', () => {
    const scheduler = new FlushScheduler(() => 0);
    const got: [string, unknown][] = [];
    const conn = (name: string): Flushable => ({
      pendingBytes: 100,
      flush(socket?: net.Socket): void {
        got.push([name, socket]);
      },
    });
    const socket = (name: string): net.Socket => ({ name }) as unknown as net.Socket;
    const waiting = conn('b');
    scheduler.add(waiting, false);
    scheduler.add(conn('u1'), true, socket('s1'));
    scheduler.add(conn('u2'), true, socket('s2'));
    scheduler.promote(waiting, socket('sb'));
    scheduler.flushUrgent();
    expect(got).toEqual([
      ['u1', { name: 's1' }],
      ['u2', { name: 's2' }],
      ['b', { name: 'sb' }],
    ]);
  });
});
