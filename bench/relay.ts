/**
 * Directory node relay benchmark. Starts `onionmc run` as a directory node in its own process
 * (testing mode, loopback), connects PEERS raw peers that handshake (793), then has SENDERS of them
 * send privmsgs to random other peers as fast as the socket takes them, for DURATION_S seconds.
 * Prints privmsgs relayed per second (counted at the recipients), the directory's CPU time and its
 * peak RSS. The directory does O(1) work per privmsg in the number of peers (a nick map), so the
 * rate should not fall as PEERS grows.
 *
 *   npm run bench -- [--peers 2000] [--senders 200] [--seconds 10]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freePort, pollUntil } from '../src/demo/cluster.js';
import { encodeEnvelope } from '../src/wire/envelope.js';
import { encodeClientHandshake } from '../src/wire/handshake.js';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '2000' },
    senders: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
  },
});
const PEERS = Number(values.peers);
const SENDERS = Math.min(PEERS, Number(values.senders));
const DURATION_S = Number(values.seconds);
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function randomNick(i: number): string {
  let s = '';
  let n = i + 1;
  while (s.length < 14) {
    s += BASE58[n % 58] ?? '1';
    n = Math.floor(n / 58) + s.length * 7919;
  }
  return `J5${s}`;
}

function rssKb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return (ticks * 1000) / 100;
}

async function main(): Promise<void> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'onionmc-bench-'));
  const port = await freePort();
  const config = path.join(dir, 'dn.cfg');
  await fsp.writeFile(
    config,
    `[BLOCKCHAIN]\nnetwork = testnet\n[MESSAGING:onion]\ntype = onion\nonion_serving_host = 127.0.0.1\nonion_serving_port = ${port}\ndirectory_nodes = 127.0.0.1:${port}\nregtest_count = 1,1\nnick_auth_mode = disabled\n`,
  );
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const dn = spawn(process.execPath, [cli, 'run', '--config', config, '--log-level', 'warn'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const dnPid = dn.pid ?? 0;
  try {
    await pollUntil(
      'the directory to listen',
      () =>
        new Promise<true | undefined>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => {
            resolve(undefined);
          });
        }),
      10_000,
    );

    const nicks = Array.from({ length: PEERS }, (_, i) => randomNick(i));
    let received = 0;
    let handshaked = 0;
    const sockets: net.Socket[] = [];
    const connectStarted = Date.now();
    for (let i = 0; i < PEERS; i++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      sockets.push(socket);
      let buffer = '';
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        let end;
        while ((end = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (line.startsWith('{"type": 685')) received++;
          else if (line.startsWith('{"type": 795')) handshaked++;
        }
      });
      socket.on('error', () => undefined);
      const hs = encodeClientHandshake({
        appName: 'joinmarket',
        directory: false,
        locationString: 'NOT-SERVING-ONION',
        protoVer: 5,
        features: {},
        nick: nicks[i] ?? '',
        network: 'testnet',
      });
      socket.write(`${encodeEnvelope(793, hs)}\r\n`);
      if (i % 200 === 199)
        await pollUntil(
          'handshakes',
          () => Promise.resolve(handshaked > i - 100 ? true : undefined),
          30_000,
          5,
        );
    }
    await pollUntil(
      'all handshakes',
      () => Promise.resolve(handshaked === PEERS ? true : undefined),
      60_000,
      10,
    );
    const idleRss = rssKb(dnPid);
    process.stdout.write(
      `peers connected and handshaked: ${PEERS} in ${Date.now() - connectStarted} ms; directory RSS ${Math.round(idleRss / 1024)} MiB\n`,
    );

    // Each sender writes pre-built privmsg frames (a realistic !fill body) to random recipients,
    // 64 frames per batch, whenever its socket has drained; the generator checks the deadline
    // between batches so its own load cannot stretch the measurement.
    const body = `fill 0 1000000 ${'ab'.repeat(32)} P${'cd'.repeat(32)} 03${'ef'.repeat(32)} ${'M'.repeat(96)}`;
    const FRAMES_PER_SENDER = 64;
    const WINDOW = 20_000;
    let sent = 0;
    const cpuBefore = cpuMs(dnPid);
    const started = Date.now();
    const deadline = started + DURATION_S * 1000;
    let peakRss = idleRss;
    const rssTimer = setInterval(() => {
      peakRss = Math.max(peakRss, rssKb(dnPid));
    }, 200);
    for (let s = 0; s < SENDERS; s++) {
      const socket = sockets[s];
      const from = nicks[s] ?? '';
      if (socket === undefined) continue;
      const batch = Buffer.concat(
        Array.from({ length: FRAMES_PER_SENDER }, () => {
          let to = from;
          while (to === from) to = nicks[Math.floor(Math.random() * PEERS)] ?? '';
          return Buffer.from(`${encodeEnvelope(685, `${from}!${to}!${body}`)}\r\n`);
        }),
      );
      const pump = (): void => {
        if (Date.now() >= deadline) return;
        // At most WINDOW privmsgs in flight: measure what the directory sustains, not how much
        // the kernel can buffer.
        if (sent - received >= WINDOW) {
          setTimeout(pump, 1);
          return;
        }
        sent += FRAMES_PER_SENDER;
        if (socket.write(batch)) setImmediate(pump);
        else socket.once('drain', pump);
      };
      pump();
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));
    const receivedAtStop = received;
    const elapsed = (Date.now() - started) / 1000;
    // Let what is in flight arrive, to report how much of what was sent got through.
    await pollUntil(
      'the relay to drain',
      () => Promise.resolve(received >= sent ? true : undefined),
      10_000,
      50,
    ).catch(() => undefined);
    const cpu = cpuMs(dnPid) - cpuBefore;
    clearInterval(rssTimer);
    process.stdout.write(
      [
        `senders ${SENDERS}, at most 20,000 privmsgs in flight, duration ${elapsed.toFixed(1)} s`,
        `privmsgs sent ${sent}, received by the deadline ${receivedAtStop}, in total ${received} (${received === sent ? 'none lost' : `${sent - received} not delivered`})`,
        `RELAY RATE: ${Math.round(receivedAtStop / elapsed)} privmsgs/s (each followed by a peerlist line, as the reference does; load generator on the same 2 cores)`,
        `directory CPU ${(cpu / 1000).toFixed(1)} s over ${elapsed.toFixed(1)} s (${Math.round(cpu / 10 / elapsed)}% of one core)`,
        `directory RSS: idle ${Math.round(idleRss / 1024)} MiB with ${PEERS} peers, peak ${Math.round(peakRss / 1024)} MiB under load`,
      ].join('\n') + '\n',
    );
    for (const socket of sockets) socket.destroy();
  } finally {
    dn.kill('SIGTERM');
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

await main();
