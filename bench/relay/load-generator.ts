/**
 * Load generator of the relay benchmark, in its own process (pinned to its own core by the
 * orchestrator where `taskset` exists). Driven over IPC by bench/relay.ts, one phase at a time;
 * every phase is bounded in time and count, and reports this process's own CPU time.
 *
 * - `connect`: opens PEERS TCP connections, each a serving peer (a v3 onion location) that sends a
 *   real 793 handshake (docs/protocol.md §2.3) and waits for the 795, 200 at a time.
 * - `flood`: SENDERS peers write pre-built privmsgs (a realistic `!fill` body) to random other peers,
 *   64 per batch, whenever their socket drains, with at most 20,000 privmsgs in flight: the relay's
 *   saturation rate, counted at the recipients. With `perSenderRate`, each sender is paced to at
 *   most that many privmsgs/s (batches of 8): well-behaved peers under a node's rate limits.
 * - `latency`: privmsgs at a fixed total RATE per second, spread over SENDERS, each carrying its
 *   send time; the recipients record send-to-receive time (same process clock).
 * - `fanout`: FANOUT_SENDERS peers send pubmsgs (an offer) with at most max(20,000, 2 × peers)
 *   deliveries in flight (each paced to `perSenderRate` pubmsgs/s when given); deliveries are
 *   counted at every recipient.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { encodeEnvelope } from '../../src/wire/envelope.js';
import { encodeClientHandshake } from '../../src/wire/handshake.js';
import { onionAddressFromPublicKey } from '../../src/wire/location.js';

/** A phase request from the orchestrator. */
export type GeneratorCommand =
  | { readonly phase: 'connect'; readonly port: number; readonly peers: number }
  | {
      readonly phase: 'flood';
      readonly seconds: number;
      readonly senders: number;
      /** Privmsgs/s per sender at most (a well-behaved peer); default: as fast as it drains. */
      readonly perSenderRate?: number;
    }
  | {
      readonly phase: 'latency';
      readonly seconds: number;
      readonly senders: number;
      readonly rate: number;
    }
  | {
      readonly phase: 'fanout';
      readonly seconds: number;
      readonly senders: number;
      /** Pubmsgs/s per sender at most (a well-behaved peer); default: as fast as it drains. */
      readonly perSenderRate?: number;
    }
  | { readonly phase: 'exit' };

/** What a phase reports back. */
export interface GeneratorReport {
  readonly phase: string;
  readonly elapsedS: number;
  /** This process's CPU time (user + system) during the phase, µs. */
  readonly cpuUs: number;
  readonly sent: number;
  /** Counted at the recipients by the end of the measured window. */
  readonly receivedInWindow: number;
  /** Counted at the recipients once in-flight messages arrived (bounded wait). */
  readonly receivedTotal: number;
  readonly p50Us?: number;
  readonly p99Us?: number;
  readonly maxUs?: number;
  /** This process's event-loop delay during the phase (latency phase), ms: its own share. */
  readonly loopDelayP99Ms?: number;
  readonly loopDelayMaxMs?: number;
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const IN_FLIGHT_PRIVMSGS = 20_000;
const FRAMES_PER_BATCH = 64;
const PACED_FRAMES_PER_BATCH = 8;
/** Pubmsgs in flight in the fan-out phase (deliveries: times the recipients, at most 200,000). */
const FANOUT_WINDOW_PUBMSGS = 100;
const MAX_LATENCY_SAMPLES = 1_000_000;
const DRAIN_WAIT_MS = 10_000;
const BODY_TAIL = `1000000 ${'ab'.repeat(32)} P${'cd'.repeat(32)} 03${'ef'.repeat(32)} ${'M'.repeat(96)}`;
// `{"type": 685, "line": "` + from(16) + `!` + to(16) + `!` + `fill `: where the send time starts.
const TIMESTAMP_OFFSET = 23 + 16 + 1 + 16 + 1 + 5;

function nickOf(i: number): string {
  let s = '';
  let n = i + 1;
  while (s.length < 14) {
    s += BASE58[n % 58] ?? '1';
    n = Math.floor(n / 58) + s.length * 7919;
  }
  return `J5${s}`;
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `done()` or `timeoutMs`, checking every `stepMs`; returns whether done. */
async function waitFor(done: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
  return true;
}

let sockets: net.Socket[] = [];
let nicks: string[] = [];
let handshaked = 0;
let privmsgs = 0;
let pubmsgs = 0;
let latencies: number[] | undefined;

function onData(this: { pending: Buffer | undefined }, chunk: Buffer): void {
  const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
  let start = 0;
  let nl: number;
  while ((nl = buf.indexOf(10, start)) >= 0) {
    // `{"type": NNN`: the type's digits are bytes 9-11 of the line.
    const d1 = buf[start + 9];
    const d3 = buf[start + 11];
    if (d1 === 0x36 && d3 === 0x35) {
      privmsgs++;
      if (latencies !== undefined && latencies.length < MAX_LATENCY_SAMPLES) {
        let ts = 0;
        for (let i = start + TIMESTAMP_OFFSET; i < nl; i++) {
          const c = buf[i] ?? 0;
          if (c < 0x30 || c > 0x39) break;
          ts = ts * 10 + (c - 0x30);
        }
        if (ts > 0) latencies.push(nowUs() - ts);
      }
    } else if (d1 === 0x36 && d3 === 0x37) pubmsgs++;
    else if (d1 === 0x37 && d3 === 0x35) handshaked++;
    start = nl + 1;
  }
  this.pending = start < buf.length ? Buffer.from(buf.subarray(start)) : undefined;
}

async function connect(port: number, peers: number): Promise<void> {
  nicks = Array.from({ length: peers }, (_, i) => nickOf(i));
  for (let i = 0; i < peers; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    sockets.push(socket);
    socket.on('data', onData.bind({ pending: undefined }));
    socket.on('error', () => undefined);
    const location = `${onionAddressFromPublicKey(crypto.randomBytes(32))}:5222`;
    const hs = encodeClientHandshake({
      appName: 'joinmarket',
      directory: false,
      locationString: location,
      protoVer: 5,
      features: {},
      nick: nicks[i] ?? '',
      network: 'testnet',
    });
    socket.write(`${encodeEnvelope(793, hs)}\r\n`);
    if (i % 200 === 199 && !(await waitFor(() => handshaked > i - 100, 30_000)))
      throw new Error(`only ${handshaked} of ${i + 1} peers handshaked after 30 s`);
  }
  if (!(await waitFor(() => handshaked >= peers, 60_000)))
    throw new Error(`only ${handshaked} of ${peers} peers handshaked after 60 s`);
}

function privmsgFrame(from: string, to: string, timestamp: number | undefined): string {
  const ts = timestamp === undefined ? '0' : String(timestamp);
  return `${encodeEnvelope(685, `${from}!${to}!fill ${ts} ${BODY_TAIL}`)}\r\n`;
}

function randomOther(from: number): string {
  let to = from;
  while (to === from) to = Math.floor(Math.random() * nicks.length);
  return nicks[to] ?? '';
}

/**
 * Pacing of one well-behaved sender: a token bucket of `rate` messages/s that holds at most half a
 * second's worth (or one batch), so that a sender held back by the in-flight cap never catches up
 * in a burst larger than a rate limiter's.
 */
class Pacer {
  readonly #rate: number | undefined;
  #tokens: number;
  #at: number;

  constructor(rate: number | undefined, started: number) {
    this.#rate = rate;
    this.#tokens = 0;
    this.#at = started;
  }

  /** Ms to wait before `count` more may go (then call again); 0: they may go now, and are charged. */
  delay(count: number): number {
    const rate = this.#rate;
    if (rate === undefined) return 0;
    const now = Date.now();
    const cap = Math.max(count, rate / 2);
    this.#tokens = Math.min(cap, this.#tokens + ((now - this.#at) * rate) / 1000);
    this.#at = now;
    if (this.#tokens >= count) {
      this.#tokens -= count;
      return 0;
    }
    return Math.max(1, Math.ceil(((count - this.#tokens) * 1000) / rate));
  }
}

async function flood(
  seconds: number,
  senders: number,
  perSenderRate: number | undefined,
): Promise<GeneratorReport> {
  const count = Math.min(senders, sockets.length);
  const perBatch = perSenderRate === undefined ? FRAMES_PER_BATCH : PACED_FRAMES_PER_BATCH;
  const startCount = privmsgs;
  let sent = 0;
  const cpu0 = process.cpuUsage();
  const started = Date.now();
  const deadline = started + seconds * 1000;
  for (let s = 0; s < count; s++) {
    const socket = sockets[s];
    const from = nicks[s] ?? '';
    if (socket === undefined) continue;
    const batch = Buffer.from(
      Array.from({ length: perBatch }, () => privmsgFrame(from, randomOther(s), undefined)).join(
        '',
      ),
    );
    const pacer = new Pacer(perSenderRate, started);
    const pump = (): void => {
      if (Date.now() >= deadline) return;
      if (sent - (privmsgs - startCount) >= IN_FLIGHT_PRIVMSGS) {
        setTimeout(pump, 1);
        return;
      }
      const wait = pacer.delay(perBatch);
      if (wait > 0) {
        setTimeout(pump, wait);
        return;
      }
      sent += perBatch;
      if (socket.write(batch)) setImmediate(pump);
      else socket.once('drain', pump);
    };
    pump();
  }
  return endPhase(
    'flood',
    { started, deadline, cpu0 },
    () => privmsgs - startCount,
    () => sent,
  );
}

/**
 * Ends a timed phase: waits for its deadline, takes what arrived by then and this process's CPU
 * time, then waits (at most {@link DRAIN_WAIT_MS}) for the rest of what was sent.
 * @param received - messages counted at the recipients since the phase began.
 * @param sent - messages sent (read once the deadline passed).
 */
async function endPhase(
  phase: string,
  clock: { started: number; deadline: number; cpu0: NodeJS.CpuUsage },
  received: () => number,
  sent: () => number,
): Promise<GeneratorReport> {
  await sleep(Math.max(0, clock.deadline - Date.now()));
  const receivedInWindow = received();
  const elapsedS = (Date.now() - clock.started) / 1000;
  const cpu = process.cpuUsage(clock.cpu0);
  const expected = sent();
  await waitFor(() => received() >= expected, DRAIN_WAIT_MS, 20);
  return {
    phase,
    elapsedS,
    cpuUs: cpu.user + cpu.system,
    sent: expected,
    receivedInWindow,
    receivedTotal: received(),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

async function latency(seconds: number, senders: number, rate: number): Promise<GeneratorReport> {
  const count = Math.max(1, Math.min(senders, sockets.length));
  const total = Math.min(MAX_LATENCY_SAMPLES, Math.round(rate * seconds));
  const startCount = privmsgs;
  const samples: number[] = [];
  latencies = samples;
  let sent = 0;
  const cpu0 = process.cpuUsage();
  const started = nowUs();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((nowUs() - started) * rate) / 1e6));
      while (sent < due) {
        const s = sent % count;
        sockets[s]?.write(privmsgFrame(nicks[s] ?? '', randomOther(s), nowUs()));
        sent++;
      }
      if (sent >= total || nowUs() - started > seconds * 2e6) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const elapsedS = (nowUs() - started) / 1e6;
  const receivedInWindow = privmsgs - startCount;
  await waitFor(() => privmsgs - startCount >= sent, DRAIN_WAIT_MS, 20);
  loopDelay.disable();
  const cpu = process.cpuUsage(cpu0);
  latencies = undefined;
  samples.sort((a, b) => a - b);
  return {
    phase: 'latency',
    elapsedS,
    cpuUs: cpu.user + cpu.system,
    sent,
    receivedInWindow,
    receivedTotal: privmsgs - startCount,
    p50Us: percentile(samples, 50),
    p99Us: percentile(samples, 99),
    maxUs: samples[samples.length - 1] ?? 0,
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
  };
}

async function fanout(
  seconds: number,
  senders: number,
  perSenderRate: number | undefined,
): Promise<GeneratorReport> {
  const count = Math.max(1, Math.min(senders, sockets.length));
  const copies = sockets.length - 1;
  const window = Math.max(IN_FLIGHT_PRIVMSGS, Math.min(FANOUT_WINDOW_PUBMSGS * copies, 200_000));
  const startCount = pubmsgs;
  let sent = 0;
  const cpu0 = process.cpuUsage();
  const started = Date.now();
  const deadline = started + seconds * 1000;
  for (let s = 0; s < count; s++) {
    const socket = sockets[s];
    if (socket === undefined) continue;
    const frame = Buffer.from(
      `${encodeEnvelope(687, `${nicks[s] ?? ''}!PUBLIC!sw0reloffer 0 27300 1000000 0 0.00002`)}\r\n`,
    );
    const pacer = new Pacer(perSenderRate, started);
    const pump = (): void => {
      if (Date.now() >= deadline) return;
      if (sent * copies - (pubmsgs - startCount) >= window) {
        setTimeout(pump, 1);
        return;
      }
      const wait = pacer.delay(1);
      if (wait > 0) {
        setTimeout(pump, wait);
        return;
      }
      sent++;
      if (socket.write(frame)) setImmediate(pump);
      else socket.once('drain', pump);
    };
    pump();
  }
  return endPhase(
    'fanout',
    { started, deadline, cpu0 },
    () => pubmsgs - startCount,
    () => sent * copies,
  );
}

process.on('message', (command: GeneratorCommand) => {
  const run = async (): Promise<GeneratorReport | undefined> => {
    switch (command.phase) {
      case 'connect': {
        const cpu0 = process.cpuUsage();
        const started = Date.now();
        await connect(command.port, command.peers);
        const cpu = process.cpuUsage(cpu0);
        return {
          phase: 'connect',
          elapsedS: (Date.now() - started) / 1000,
          cpuUs: cpu.user + cpu.system,
          sent: command.peers,
          receivedInWindow: handshaked,
          receivedTotal: handshaked,
        };
      }
      case 'flood':
        return flood(command.seconds, command.senders, command.perSenderRate);
      case 'latency':
        return latency(command.seconds, command.senders, command.rate);
      case 'fanout':
        return fanout(command.seconds, command.senders, command.perSenderRate);
      case 'exit':
        for (const socket of sockets) socket.destroy();
        sockets = [];
        process.exit(0);
    }
  };
  run().then(
    (report) => process.send?.({ report }),
    (err: unknown) => process.send?.({ error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => {
  process.exit(0);
});
process.send?.({ ready: true });
