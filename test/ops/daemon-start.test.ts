/**
 * The daemon as an operator watches it start (issue: a directory node whose tor is not
 * bootstrapped said nothing for minutes and served no API): the local API listens before tor is
 * reached, `/v1/info` shows `starting: waiting for tor bootstrap 45%`, a log line comes at every
 * progress interval, `stop()` during the wait returns at once (the start is aborted), and the
 * metrics and info fields of a running node. Tor is a scripted control port on a unix socket.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.js';
import { parseConfig } from '../../src/config/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { parseBootstrapPhase } from '../../src/daemon/tor-bootstrap.js';
import { VERSION } from '../../src/daemon/version.js';
import { pollUntil } from '../../src/demo/cluster.js';
import { BoundServer } from '../helpers/ports.js';
import { hasCode, OnionmcError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { loadOrCreateOnionKey } from '../../src/tor/onion-key.js';
import type { Dialer } from '../../src/peer/transport.js';
import { BootstrappingTor } from './fake-tor.js';

/** JSON log lines written so far, and a way to wait for one. */
function capture(): {
  logger: ReturnType<typeof createLogger>;
  lines: { msg: string; [k: string]: unknown }[];
} {
  const lines: { msg: string }[] = [];
  let pending = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      pending += chunk.toString('utf8');
      let end: number;
      while ((end = pending.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(pending.slice(0, end)) as { msg: string });
        pending = pending.slice(end + 1);
      }
      callback();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

describe('a Tor-mode directory node whose tor is still bootstrapping', () => {
  let dir = '';
  const tor = new BootstrappingTor();
  /** Serving sockets bound on port 0 before each config names the port. */
  const listeners: BoundServer[] = [];
  const listen = async (): Promise<BoundServer> => {
    const listener = await BoundServer.listen();
    listeners.push(listener);
    return listener;
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-start-'));
    await tor.listen(path.join(dir, 'control.sock'));
  });

  afterAll(async () => {
    for (const listener of listeners) await listener.close();
    await tor.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('parses tor bootstrap phases', () => {
    expect(
      parseBootstrapPhase('NOTICE BOOTSTRAP PROGRESS=45 TAG=x SUMMARY="Loading relay descriptors"'),
    ).toEqual({ progress: 45, summary: 'Loading relay descriptors' });
    expect(parseBootstrapPhase('NOTICE BOOTSTRAP TAG=x')).toBeUndefined();
  });

  it('serves its API before tor is ready, says where it is, logs progress, and stops at once', async () => {
    const hsDir = path.join(dir, 'onion');
    const key = await loadOrCreateOnionKey(hsDir);
    const socket = path.join(dir, 'api.sock');
    const listener = await listen();
    const config = parseConfig(
      [
        '[BLOCKCHAIN]',
        'network = signet',
        '[MESSAGING:onion]',
        'type = onion',
        `tor_control_host = unix:${path.join(dir, 'control.sock')}`,
        'onion_serving_host = 127.0.0.1',
        `onion_serving_port = ${listener.port}`,
        `hidden_service_dir = ${hsDir}`,
        `directory_nodes = ${key.onionAddress}:5222`,
        `api = unix:${socket}`,
      ].join('\n'),
      path.join(dir, 'joinmarket.cfg'),
    );
    const { logger, lines } = capture();
    const daemon = new Daemon({
      config,
      logger,
      progressLogMs: 50,
      bootstrapPollMs: 20,
      server: listener,
    });
    const started = daemon.start().then(
      () => 'started',
      (err: unknown) => (hasCode(err, 'ERR_CLOSED') ? 'aborted' : String(err)),
    );
    const api = new ApiClient({ kind: 'unix', path: socket });
    const info = await pollUntil(
      'the API to report the bootstrap percentage',
      async () => {
        const body = (await api.call('GET', '/v1/info')) as { state: string };
        return body.state === 'starting: waiting for tor bootstrap 45%' ? body : undefined;
      },
      10_000,
    );
    expect(info).toMatchObject({
      version: VERSION,
      role: 'directory',
      tor: { version: '0.4.9.11', bootstrapProgress: 45, powDefenses: false },
    });
    // At least two "still starting" lines at the (shortened) progress interval.
    const waiting = (l: { msg: string; state?: unknown }): boolean =>
      l.msg === 'still starting' && l.state === 'starting: waiting for tor bootstrap 45%';
    await pollUntil(
      'two progress log lines while tor is at 45%',
      () => Promise.resolve(lines.filter(waiting).length >= 2 ? true : undefined),
      10_000,
    );
    expect(lines.find((l) => l.msg === 'waiting for tor to bootstrap')).toMatchObject({
      progress: 45,
      summary: 'Loading relay descriptors',
    });
    // Stop while waiting: the start ends at once, aborted, and nothing is left listening.
    const before = Date.now();
    await daemon.stop({ deadlineMs: 2_000 });
    expect(await started).toBe('aborted');
    expect(Date.now() - before).toBeLessThan(2_000);
    expect(daemon.state).toBe('stopped');
    await expect(fs.stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
    // The onion was never asked for: tor was not ready.
    expect(tor.commands.filter((c) => c.startsWith('ADD_ONION'))).toEqual([]);
  });

  it('runs once tor is bootstrapped, and stop() keeps its deadline when tor hangs', async () => {
    const hsDir = path.join(dir, 'onion2');
    const key = await loadOrCreateOnionKey(hsDir);
    tor.serviceId = key.serviceId;
    tor.progress = 100;
    const socket = path.join(dir, 'api2.sock');
    const listener = await listen();
    const config = parseConfig(
      [
        '[BLOCKCHAIN]',
        'network = signet',
        '[MESSAGING:onion]',
        'type = onion',
        `tor_control_host = unix:${path.join(dir, 'control.sock')}`,
        'onion_serving_host = 127.0.0.1',
        `onion_serving_port = ${listener.port}`,
        `hidden_service_dir = ${hsDir}`,
        `directory_nodes = ${key.onionAddress}:5222`,
        `api = unix:${socket}`,
      ].join('\n'),
      path.join(dir, 'joinmarket2.cfg'),
    );
    const daemon = new Daemon({
      config,
      logger: silentLogger(),
      bootstrapPollMs: 20,
      server: listener,
    });
    await daemon.start();
    expect(daemon.info()).toMatchObject({
      state: 'running',
      tor: { version: '0.4.9.11', bootstrapProgress: 100, onion: key.onionAddress },
    });
    // tor stops answering: DEL_ONION and QUIT would wait for tor's 30 s command timeout.
    tor.unanswered.add('DEL_ONION');
    tor.unanswered.add('QUIT');
    const before = Date.now();
    await expect(daemon.stop({ deadlineMs: 300 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(Date.now() - before).toBeLessThan(5_000);
    expect(daemon.state).toBe('stopped');
    await expect(fs.stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
    tor.unanswered.clear();
  });

  it("a taker's info has no tor object: it never asks tor's control port (no onion, no PoW)", async () => {
    const socket = path.join(dir, 'api3.sock');
    const listener = await listen();
    const config = parseConfig(
      [
        '[BLOCKCHAIN]',
        'network = signet',
        '[MESSAGING:onion]',
        'type = onion',
        `tor_control_host = unix:${path.join(dir, 'control.sock')}`,
        'onion_serving_host = 127.0.0.1',
        `onion_serving_port = ${listener.port}`,
        'directory_nodes = satoshi2vcg5e2ept7tjkzlkpomkobqmgtsjzegg6wipnoajadissead.onion:5222',
        `api = unix:${socket}`,
      ].join('\n'),
      path.join(dir, 'joinmarket3.cfg'),
    );
    const commandsBefore = tor.commands.length;
    // The directory node is never reached: every dial fails at once (the taker retries).
    const dialer: Dialer = {
      dial: () => Promise.reject(new OnionmcError('ERR_DIAL_REFUSED', 'no directory node here')),
    };
    const daemon = new Daemon({ config, logger: silentLogger(), dialer, server: listener });
    try {
      await daemon.start();
      const info = daemon.info();
      expect(info).toMatchObject({ state: 'running', role: 'taker' });
      expect(info.tor).toBeUndefined();
      expect(tor.commands.length).toBe(commandsBefore);
    } finally {
      await daemon.stop();
    }
  });
});
