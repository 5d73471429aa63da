/**
 * Adversarial harness: a directory node in its own process (`onionmc run`, JoinMarket testing mode
 * on loopback, docs/protocol.md §8.4), raw peers that speak the wire protocol themselves
 * (docs/protocol.md §1, §2.3), a well-behaved pair measuring latency and losses in a worker thread
 * (its own event loop, so the attackers' load in this thread does not skew its clock), and RSS
 * read from /proc/<pid>/status.
 *
 * Nothing here imports the node's code: the peers build their lines by hand, so the suite keeps
 * working while src/node and src/peer change, and it can be pointed at another implementation.
 *
 * Every loop is bounded in count and time and stops by itself.
 *
 * Ports: the node's location string (and so its role) names its serving port, so it cannot bind
 * port 0 itself; {@link listenOnLoopback} binds 0 here, the port goes into the config, and the
 * listening socket is handed to the node (`onionmc run --listen-fd 3`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The repository root: the nearest folder above this file holding package.json. */
export const ROOT = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the repository root (package.json) above the harness');
})();

/** The compiled CLI the node runs from (`npm run build` makes it). */
export const CLI_PATH = path.join(ROOT, 'dist', 'cli', 'main.js');

const MIB = 1024 * 1024;

/** File descriptors asked for the node (`ulimit -n`); the hard limit is used if lower. */
export const NODE_NOFILE = 65_536;

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** A random nick of the JoinMarket format `J5` + 14 base58 characters (docs/protocol.md §5.5). */
export function randomNick(): string {
  let s = 'J5';
  for (let i = 0; i < 14; i++) s += BASE58[Math.floor(Math.random() * BASE58.length)] ?? '1';
  return s;
}

/** One framed envelope line as bytes: `{"type": N, "line": "..."}` + CRLF (docs/protocol.md §1.1, §1.2). */
export function frame(type: number, line: string): Buffer {
  return Buffer.from(`${JSON.stringify({ type, line })}\r\n`, 'utf8');
}

/** A client 793 line (docs/protocol.md §2.3) for `nick`, not serving, on testnet. */
export function handshakeLine(nick: string, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    'app-name': 'joinmarket',
    directory: false,
    'location-string': 'NOT-SERVING-ONION',
    'proto-ver': 5,
    features: {},
    nick,
    network: 'testnet',
    ...overrides,
  });
}

/** A server listening on a loopback port the system chose, and that port. */
export async function listenOnLoopback(): Promise<{
  server: net.Server;
  port: number;
  fd: number;
}> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  // Node has no public accessor for a server's fd (spawn duplicates an integer stdio entry into
  // the child); read here rather than from src/demo/cluster.ts (listeningFd), since this harness
  // imports none of the node's code.
  const fd = (server as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the listening socket has no fd');
  return { server, port, fd };
}

/** Resolves when `check()` is true, polling every `intervalMs`; rejects after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The `q` quantile (0..1) of `values` (nearest rank), or NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** A line of `/proc/<pid>/status` in MiB (`VmRSS`, `VmHWM`), or NaN when the process is gone. */
export function procStatusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

/**
 * More `[MESSAGING:onion]` keys for every node, from `ONIONMC_ADV_CONFIG` (`key=value,key=value`),
 * over the case's own: to check by hand that a target fails with its mechanism turned off, e.g.
 * `ONIONMC_ADV_CONFIG=max_queued_bytes=1073741824`.
 */
function configFromEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (process.env.ONIONMC_ADV_CONFIG ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** Node processes started and not yet seen to exit: killed when this process exits. */
const LIVE_NODES = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of LIVE_NODES) child.kill('SIGKILL');
});

/**
 * SIGKILLs every node process this harness started that is still running (for a test's afterAll:
 * a test that timed out leaves its node behind otherwise).
 */
export function killAllNodes(): void {
  for (const child of LIVE_NODES) child.kill('SIGKILL');
  LIVE_NODES.clear();
}

/** The node's memory right after a full garbage collection, MiB. */
export interface MemoryAfterGc {
  /** V8 heap in use: live objects only, right after the collection. */
  readonly heapMb: number;
  /** V8 heap reserved (pages V8 keeps for later). */
  readonly heapTotalMb: number;
  /** Outside the V8 heap: Buffers and other native memory held by JavaScript objects. */
  readonly externalMb: number;
  readonly rssMb: number;
}

/** A directory node process under test. */
export class NodeProcess {
  readonly port: number;
  readonly dir: string;
  readonly apiPath: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Set once the process exited: `code` or `signal`. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #rssTimer: NodeJS.Timeout | undefined;
  /** Highest RSS seen by {@link sampleRss}, MiB. */
  peakRssMb = 0;

  private constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.apiPath = path.join(dir, 'api.sock');
    this.logFile = path.join(dir, 'node.log');
    this.child = child;
    LIVE_NODES.add(child);
    child.once('exit', (code, signal) => {
      LIVE_NODES.delete(child);
      this.exit = { code, signal };
    });
  }

  /**
   * Starts a directory node: writes its joinmarket.cfg (testing mode, loopback, local API on a unix
   * socket), spawns `node --expose-gc` (for `POST /v1/gc`) `onionmc run` through
   * `sh -c 'ulimit -n ...; exec node ...'` with
   * ONIONMC_ALLOW_ROOT=1 (the node runs as root in CI), and waits until its API answers.
   * @param extraConfig - more `key = value` lines for [MESSAGING:onion] (limits, once they exist).
   */
  static async start(
    extraConfig: Readonly<Record<string, string>> = {},
    options: { port?: number; dir?: string; logLevel?: string } = {},
  ): Promise<NodeProcess> {
    if (!fs.existsSync(CLI_PATH))
      throw new Error(`${CLI_PATH} is missing: run npm run build first`);
    const dir = options.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'onionmc-adv-')));
    // A restart on a given port binds it itself (as after a crash under systemd); a first start
    // is handed a socket bound on port 0.
    const listener = options.port === undefined ? await listenOnLoopback() : undefined;
    const port = options.port ?? listener?.port ?? 0;
    const config = path.join(dir, 'dn.cfg');
    const apiPath = path.join(dir, 'api.sock');
    await fsp.writeFile(
      config,
      [
        '[BLOCKCHAIN]',
        'network = testnet',
        '[MESSAGING:onion]',
        'type = onion',
        'onion_serving_host = 127.0.0.1',
        `onion_serving_port = ${port}`,
        `directory_nodes = 127.0.0.1:${port}`,
        'regtest_count = 1,1',
        `api = unix:${apiPath}`,
        ...Object.entries({ ...extraConfig, ...configFromEnv() }).map(([k, v]) => `${k} = ${v}`),
        '',
      ].join('\n'),
    );
    const log = fs.openSync(path.join(dir, 'node.log'), 'a');
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        // Raise the soft limit as far as allowed, then become the node (same pid).
        `ulimit -n ${NODE_NOFILE} 2>/dev/null || ulimit -n "$(ulimit -H -n)"; exec "$0" "$@"`,
        process.execPath,
        // POST /v1/gc (the heap after a full collection, for the churn case) needs it.
        '--expose-gc',
        // More node flags for investigations, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
        ...(process.env.ONIONMC_ADV_NODE_ARGS ?? '').split(' ').filter(Boolean),
        CLI_PATH,
        'run',
        '--config',
        config,
        '--log-level',
        options.logLevel ?? 'warn',
        ...(listener !== undefined ? ['--listen-fd', '3'] : []),
      ],
      {
        stdio: ['ignore', log, log, ...(listener !== undefined ? [listener.fd] : [])],
        env: { ...process.env, ONIONMC_ALLOW_ROOT: '1' },
      },
    );
    fs.closeSync(log);
    listener?.server.close();
    const node = new NodeProcess(port, dir, child);
    try {
      await waitUntil(
        'the directory node to answer on its API',
        async () => {
          if (node.exit !== undefined)
            throw new Error(`node exited during start: ${await node.logTail()}`);
          return (await node.api('GET', '/health').catch(() => undefined))?.status === 200;
        },
        15_000,
        50,
      );
    } catch (err) {
      await node.stop();
      throw err;
    }
    return node;
  }

  /** The node's pid (the shell exec-ed into node). */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** True while the process runs. */
  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Current RSS in MiB. */
  rssMb(): number {
    return procStatusMb(this.pid, 'VmRSS');
  }

  /** Peak RSS since the process started (VmHWM), MiB. */
  hwmMb(): number {
    return procStatusMb(this.pid, 'VmHWM');
  }

  /** Starts sampling RSS every `intervalMs` into {@link peakRssMb} (VmHWM covers the gaps). */
  sampleRss(intervalMs = 100): void {
    clearInterval(this.#rssTimer);
    this.peakRssMb = this.rssMb();
    this.#rssTimer = setInterval(() => {
      const rss = this.rssMb();
      if (rss > this.peakRssMb) this.peakRssMb = rss;
    }, intervalMs);
    this.#rssTimer.unref();
  }

  /**
   * Runs a full garbage collection in the node (`POST /v1/gc`; the node runs with `--expose-gc`)
   * and returns the memory figures after it.
   * @throws Error when the node does not answer 200.
   */
  async afterGc(): Promise<MemoryAfterGc> {
    const res = await this.api('POST', '/v1/gc');
    const after = (res.body as { after?: Record<string, unknown> } | undefined)?.after ?? {};
    const mb = (key: string): number => {
      const v = after[key];
      if (res.status !== 200 || typeof v !== 'number')
        throw new Error(`POST /v1/gc answered ${res.status}: ${JSON.stringify(res.body)}`);
      return v / MIB;
    };
    return {
      heapMb: mb('heapUsedBytes'),
      heapTotalMb: mb('heapTotalBytes'),
      externalMb: mb('externalBytes'),
      rssMb: mb('rssBytes'),
    };
  }

  /** One local API request; resolves with the status and the parsed JSON body. */
  api(method: string, urlPath: string): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.apiPath, method, path: urlPath }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: text === '' ? undefined : JSON.parse(text),
            });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
        res.on('error', reject);
      });
      req.setTimeout(10_000, () => req.destroy(new Error(`API ${urlPath} timed out`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** The node's counters (`/v1/counters`), or {} when it does not answer. */
  async counters(): Promise<Record<string, number>> {
    return (await this.info()).counters ?? {};
  }

  /**
   * The node's counters and memory figures (`/v1/counters`, bytes), or {} when it does not answer.
   * Not `/v1/info`: with thousands of peers its peer list takes the node milliseconds to write,
   * which polling would add to the pair's latency.
   */
  async info(): Promise<{
    counters: Record<string, number> | undefined;
    memory: Record<string, number> | undefined;
  }> {
    const res = await this.api('GET', '/v1/counters').catch(() => undefined);
    const body = res?.body as
      { counters?: Record<string, number>; memory?: Record<string, number> } | undefined;
    return { counters: body?.counters, memory: body?.memory };
  }

  /** The last lines of the node's log. */
  async logTail(lines = 15): Promise<string> {
    const text = await fsp.readFile(this.logFile, 'utf8').catch(() => '');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /**
   * Sends SIGTERM, waits for the exit (SIGKILL after `timeoutMs`), removes the folder, unless
   * `keep` or `ONIONMC_ADV_KEEP` is set (then its path is printed: the config and `node.log`, with
   * what `ONIONMC_ADV_NODE_ARGS` such as `--trace-gc` made the node print).
   */
  async stop(
    timeoutMs = 10_000,
    keep = false,
  ): Promise<{ code: number | null; signal: string | null }> {
    clearInterval(this.#rssTimer);
    if (this.exit === undefined) {
      const exited = new Promise<void>((resolve) =>
        this.child.once('exit', () => {
          resolve();
        }),
      );
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    }
    if (keep || process.env.ONIONMC_ADV_KEEP !== undefined)
      process.stderr.write(`node folder kept: ${this.dir}\n`);
    else await fsp.rm(this.dir, { recursive: true, force: true });
    return { code: this.exit?.code ?? null, signal: this.exit?.signal ?? null };
  }
}

/** Options of a {@link RawPeer}. */
export interface RawPeerOptions {
  /** Keep splitting lines after the handshake and call this for each (default: discard them). */
  readonly onLine?: (line: string) => void;
}

/**
 * A raw TCP peer of the directory node: it writes bytes itself. After {@link handshake} it
 * discards what it receives unless given `onLine`, so that hundreds of idle peers cost this
 * process little.
 */
export class RawPeer {
  readonly socket: net.Socket;
  readonly nick: string;
  readonly openedAt = Date.now();
  /** When the node closed (or reset) the connection, ms since the epoch. */
  closedAt: number | undefined;
  /** Bytes received. */
  bytes = 0;
  /** The 795 answer, once received: accepted or not. */
  accepted: boolean | undefined;
  #buffer = '';
  #lineListeners = new Set<(line: string) => void>();
  readonly #closed: Promise<void>;
  readonly #connected: Promise<void>;

  constructor(port: number, nick: string = randomNick(), options: RawPeerOptions = {}) {
    this.nick = nick;
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    if (options.onLine !== undefined) this.#lineListeners.add(options.onLine);
    this.#connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => {
        resolve();
      });
      this.socket.once('error', reject);
    });
    this.#connected.catch(() => undefined);
    this.socket.on('error', () => undefined);
    this.#closed = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closedAt = Date.now();
        resolve();
      }),
    );
    this.socket.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      if (this.#lineListeners.size === 0 && this.accepted !== undefined) return;
      this.#buffer += chunk.toString('latin1');
      let end;
      while ((end = this.#buffer.indexOf('\n')) >= 0) {
        const line = this.#buffer.slice(0, end).replace(/\r$/, '');
        this.#buffer = this.#buffer.slice(end + 1);
        if (this.accepted === undefined && line.includes('"type": 795')) {
          this.accepted = /\\"accepted\\": true/.test(line);
        }
        for (const listener of this.#lineListeners) listener(line);
      }
      if (this.#lineListeners.size === 0) this.#buffer = '';
    });
  }

  /** Resolves once TCP connected; rejects on a connection error. */
  connected(): Promise<void> {
    return this.#connected;
  }

  /** Adds a listener for every later line. */
  onLine(listener: (line: string) => void): void {
    this.#lineListeners.add(listener);
  }

  /** True until the connection closed. */
  get open(): boolean {
    return this.closedAt === undefined;
  }

  /** Resolves when the connection closed. */
  closed(): Promise<void> {
    return this.#closed;
  }

  /** Writes raw bytes (or text, as UTF-8). */
  write(data: Buffer | string): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(data);
  }

  /** Sends a 793 for our nick; does not wait. */
  sendHandshake(overrides: Record<string, unknown> = {}): void {
    this.write(frame(793, handshakeLine(this.nick, overrides)));
  }

  /** Sends a 793 and waits for the 795 (or the close); returns whether it was accepted. */
  async handshake(timeoutMs = 10_000, overrides: Record<string, unknown> = {}): Promise<boolean> {
    this.sendHandshake(overrides);
    await waitUntil(
      `the 795 for ${this.nick}`,
      () => this.accepted !== undefined || !this.open,
      timeoutMs,
      5,
    );
    return this.accepted === true;
  }

  /**
   * Waits until the connection closes or `timeoutMs` passes; returns true if it closed. A bounded
   * observation window, used where "the node did not close it" is the outcome being measured.
   */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    if (!this.open) return true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#closed,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    return !this.open;
  }

  /**
   * Stops reading (the kernel buffers fill, then the node's queue for us grows). A socket that
   * does not read does not see the node's close either: see {@link probeClosed}.
   */
  stopReading(): void {
    this.socket.pause();
  }

  /** Closes from our side. */
  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Connects `count` raw peers and handshakes them, `batch` at a time (each batch waits for its
 * 795s). Rejects when one is refused or not answered within `timeoutMs`.
 */
export async function connectPeers(
  port: number,
  count: number,
  batch = 100,
  timeoutMs = 30_000,
): Promise<RawPeer[]> {
  const peers: RawPeer[] = [];
  for (let i = 0; i < count; i += batch) {
    const group = Array.from({ length: Math.min(batch, count - i) }, () => new RawPeer(port));
    peers.push(...group);
    const answers = await Promise.all(group.map((p) => p.handshake(timeoutMs)));
    if (answers.some((a) => !a)) throw new Error('an idle peer was refused by the directory node');
  }
  return peers;
}

/** Closes peers from our side. */
export function closePeers(peers: readonly RawPeer[]): void {
  for (const peer of peers) peer.destroy();
}

/** Latency figures of one phase of the {@link Pair}, in ms. */
export interface PhaseStats {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** What the pair saw. */
export interface PairResult {
  readonly phases: Record<string, PhaseStats>;
  /** Lines B received on the privmsg type that the pair did not send (spoofed, stolen nick). */
  readonly foreign: number;
  /** Either of the pair's connections was closed by the node. */
  readonly disconnected: boolean;
  readonly nickA: string;
  readonly nickB: string;
}

/**
 * The worker thread of the {@link Pair}, as CommonJS source (an `eval` worker runs the same under
 * vitest and compiled). A sends B a privmsg `A!B!pair <seq>` every `intervalMs`; B timestamps each
 * on arrival; latencies are kept per phase. Self-contained: no imports from the project.
 */
const PAIR_WORKER = String.raw`
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const { port, nickA, nickB, intervalMs } = workerData;
// The pair is the measuring instrument: its thread runs before the attackers' (this process's
// main thread) when both want the CPU, as if the attackers were on other machines. Linux applies
// setpriority to a thread id; without the right (not root) the pair runs at normal priority.
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(tid, -15);
} catch {}
const sentAt = new Map();
const phases = new Map();
let phase = 'setup';
let seq = 0;
let foreign = 0;
let disconnected = false;
let stopping = false;
function phaseOf(name) {
  let p = phases.get(name);
  if (!p) { p = { sent: 0, latencies: [] }; phases.set(name, p); }
  return p;
}
function connect(nick, onLine) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    let buf = '';
    let answered = false;
    socket.on('error', () => {});
    socket.on('close', () => { if (!stopping) disconnected = true; if (!answered) reject(new Error('closed before 795')); });
    socket.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      let end;
      while ((end = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, end);
        buf = buf.slice(end + 1);
        if (!answered && line.includes('"type": 795')) {
          answered = true;
          if (line.includes('\\"accepted\\": true')) resolve(socket); else reject(new Error('795 refused: ' + line.slice(0, 300)));
          continue;
        }
        onLine(line);
      }
    });
    const hs = JSON.stringify({ 'app-name': 'joinmarket', directory: false, 'location-string': 'NOT-SERVING-ONION', 'proto-ver': 5, features: {}, nick, network: 'testnet' });
    socket.write(JSON.stringify({ type: 793, line: hs }) + '\r\n');
  });
}
const prefix = '"line": "' + nickA + '!' + nickB + '!pair ';
function onB(line) {
  if (!line.includes('"type": 685')) return;
  const i = line.indexOf(prefix);
  if (i < 0) { foreign++; return; }
  const n = Number(line.slice(i + prefix.length, line.indexOf('"', i + prefix.length)));
  const s = sentAt.get(n);
  if (s === undefined) { foreign++; return; }
  sentAt.delete(n);
  phaseOf(s.phase).latencies.push(performance.now() - s.at);
  if (stopping && sentAt.size === 0) finish();
}
let a, b, timer, graceTimer;
function finish() {
  clearInterval(timer); clearTimeout(graceTimer);
  const out = {};
  for (const [name, p] of phases) out[name] = { sent: p.sent, latencies: p.latencies };
  parentPort.postMessage({ kind: 'result', phases: out, foreign, disconnected });
  a.destroy(); b.destroy();
  parentPort.close();
}
Promise.all([connect(nickA, () => {}), connect(nickB, onB)]).then(([sa, sb]) => {
  a = sa; b = sb;
  timer = setInterval(() => {
    if (stopping || a.destroyed) return;
    const n = ++seq;
    sentAt.set(n, { at: performance.now(), phase });
    phaseOf(phase).sent++;
    a.write(JSON.stringify({ type: 685, line: nickA + '!' + nickB + '!pair ' + n }) + '\r\n');
  }, intervalMs);
  parentPort.postMessage({ kind: 'ready' });
}, (err) => parentPort.postMessage({ kind: 'error', message: String(err && err.message) }));
parentPort.on('message', (msg) => {
  if (msg.kind === 'phase') phase = msg.name;
  else if (msg.kind === 'stop') {
    stopping = true;
    if (sentAt.size === 0) finish(); else graceTimer = setTimeout(finish, msg.graceMs);
  }
});
`;

/**
 * The well-behaved pair: two peers exchanging a privmsg every `intervalMs` through the directory
 * node, in a worker thread. Phases name the period a message was sent in ("quiet", "attack").
 */
export class Pair {
  readonly nickA = randomNick();
  readonly nickB = randomNick();
  readonly #worker: Worker;
  readonly #result: Promise<PairResult>;
  readonly #ready: Promise<void>;

  constructor(port: number, intervalMs = 50) {
    this.#worker = new Worker(PAIR_WORKER, {
      eval: true,
      workerData: { port, nickA: this.nickA, nickB: this.nickB, intervalMs },
    });
    let readyResolve: () => void = () => undefined;
    let fail: (err: Error) => void = () => undefined;
    this.#ready = new Promise((resolve, reject) => {
      readyResolve = resolve;
      fail = reject;
    });
    this.#result = new Promise((resolve, reject) => {
      this.#worker.on('message', (msg: { kind: string; message?: string } & RawPairResult) => {
        if (msg.kind === 'ready') readyResolve();
        else if (msg.kind === 'error') {
          const err = new Error(`pair: ${msg.message ?? '?'}`);
          fail(err);
          reject(err);
        } else if (msg.kind === 'result') resolve(this.#summarise(msg));
      });
      this.#worker.on('error', (err) => {
        fail(err);
        reject(err);
      });
    });
    this.#result.catch(() => undefined);
  }

  /** Resolves once both ends handshaked and A started sending. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Messages sent from now on count in phase `name`. */
  phase(name: string): void {
    this.#worker.postMessage({ kind: 'phase', name });
  }

  /**
   * Stops sending and waits up to `graceMs` for what is in flight; what has not arrived then is
   * lost.
   */
  async stop(graceMs: number): Promise<PairResult> {
    this.#worker.postMessage({ kind: 'stop', graceMs });
    const result = await this.#result;
    await this.#worker.terminate();
    return result;
  }

  #summarise(raw: RawPairResult): PairResult {
    return {
      phases: summarisePairPhases(raw.phases),
      foreign: raw.foreign,
      disconnected: raw.disconnected,
      nickA: this.nickA,
      nickB: this.nickB,
    };
  }
}

/** What the pair's worker kept of one phase: messages sent in it, latencies (ms) of those received. */
export interface RawPairPhase {
  readonly sent: number;
  readonly latencies: readonly number[];
}

interface RawPairResult {
  phases: Record<string, RawPairPhase>;
  foreign: number;
  disconnected: boolean;
}

/**
 * The {@link PhaseStats} of each phase the pair sent in, plus `attack-window`: the `attack` phase
 * and its `attack-tail` together (cases.ts `runCase`), made from whichever of the two has
 * messages. The worker lists a phase only once a message is sent in it, so an attacker the node
 * cuts before the pair's next message leaves no `attack` phase; the tail's messages and losses
 * are the attack window's then.
 */
export function summarisePairPhases(
  raw: Readonly<Record<string, RawPairPhase>>,
): Record<string, PhaseStats> {
  const attack = raw['attack'];
  const tail = raw['attack-tail'];
  const all: Record<string, RawPairPhase> = { ...raw };
  if (attack !== undefined || tail !== undefined) {
    all['attack-window'] = {
      sent: (attack?.sent ?? 0) + (tail?.sent ?? 0),
      latencies: [...(attack?.latencies ?? []), ...(tail?.latencies ?? [])],
    };
  }
  const phases: Record<string, PhaseStats> = {};
  for (const [name, p] of Object.entries(all)) {
    phases[name] = {
      sent: p.sent,
      received: p.latencies.length,
      lost: p.sent - p.latencies.length,
      p50: quantile(p.latencies, 0.5),
      p99: quantile(p.latencies, 0.99),
      max: p.latencies.length > 0 ? Math.max(...p.latencies) : Number.NaN,
    };
  }
  return phases;
}

/** What a flooding attacker did and got. */
export interface FloodStats {
  readonly nick: string;
  /** Lines written. */
  sent: number;
  /** ms after the flood started that the node closed the connection, if it did. */
  disconnectedAfterMs: number | undefined;
}

/**
 * A flooder: writes `line` (a full framed line) in batches of 64 whenever its socket drains,
 * until `durationMs` passed, `maxLines` were written, or the node closed it. After `maxLines` it
 * waits up to `lingerMs` for the node to read what it wrote (and cut it). Then, unless `keep`,
 * it resets its connection (RST): what it wrote and the node has not read yet is discarded, so the
 * backlog an unlimited node is left with ends with the flood (a 15 s flood left over a minute of
 * backlog on a loaded 2-core machine otherwise). Resolves with what it sent.
 */
export async function flood(
  peer: RawPeer,
  lineBytes: Buffer,
  durationMs: number,
  maxLines = Number.POSITIVE_INFINITY,
  keep = false,
  lingerMs = 2_000,
): Promise<FloodStats> {
  const batch = Buffer.concat(Array.from({ length: 64 }, () => lineBytes));
  const started = Date.now();
  const deadline = started + durationMs;
  const stats: FloodStats = { nick: peer.nick, sent: 0, disconnectedAfterMs: undefined };
  let selfClosed = false;
  void peer.closed().then(() => {
    if (!selfClosed) stats.disconnectedAfterMs = (peer.closedAt ?? Date.now()) - started;
  });
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      if (Date.now() >= deadline || !peer.open || stats.sent >= maxLines) {
        resolve();
        return;
      }
      stats.sent += 64;
      if (peer.write(batch)) setImmediate(pump);
      else {
        const onDrain = (): void => {
          peer.socket.off('close', onDrain);
          peer.socket.off('drain', onDrain);
          pump();
        };
        peer.socket.once('drain', onDrain);
        peer.socket.once('close', onDrain);
      }
    };
    pump();
  });
  // A flood that stopped at its line count (the CI share) leaves the node its backlog to read:
  // give it the time to do so, and to cut the flooder, before resetting.
  if (!keep && peer.open && stats.sent >= maxLines) await peer.closedWithin(lingerMs);
  if (!keep && peer.open) {
    selfClosed = true;
    peer.socket.resetAndDestroy();
  }
  return stats;
}

/**
 * Counters that show the node limiting somebody: any counter whose name contains `limit`,
 * `throttl`, `budget`, `over-rate` or `refused` (the limits helper names its counters so). The
 * suite reads them through `/v1/info`.
 */
export const LIMIT_COUNTER_RE = /limit|throttl|budget|over-rate|refused|evicted\.slow|queue/i;

/** Sum of the limit counters in a counters snapshot. */
export function limitCount(counters: Readonly<Record<string, number>>): number {
  let sum = 0;
  for (const [name, value] of Object.entries(counters))
    if (LIMIT_COUNTER_RE.test(name)) sum += value;
  return sum;
}

/**
 * Polls the node's counters every `intervalMs` until {@link stop}; records when the limit
 * counters first rose above their value at {@link LimitWatch.start}.
 */
export class LimitWatch {
  readonly #node: NodeProcess;
  #base: number;
  /** When {@link arm} was called (undefined: polling only, no limit expected yet). */
  #started: number | undefined;
  readonly #timer: NodeJS.Timeout;
  #busy = false;
  /** ms after the start that a limit counter first rose. */
  firstLimitAfterMs: number | undefined;
  /** The last counters read. */
  last: Record<string, number>;

  private constructor(node: NodeProcess, base: Record<string, number>, intervalMs: number) {
    this.#node = node;
    this.last = base;
    this.#base = limitCount(base);
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      void this.#node
        .counters()
        .then((c) => {
          if (Object.keys(c).length > 0) this.last = c;
          if (
            this.#started !== undefined &&
            this.firstLimitAfterMs === undefined &&
            limitCount(c) > this.#base
          )
            this.firstLimitAfterMs = Date.now() - this.#started;
        })
        .finally(() => (this.#busy = false));
    }, intervalMs);
  }

  /**
   * Starts polling. Started before the quiet phase, so that the pair's quiet and attack latencies
   * both include what answering the polls costs the node.
   */
  static async start(node: NodeProcess, intervalMs = 200): Promise<LimitWatch> {
    return new LimitWatch(node, await node.counters(), intervalMs);
  }

  /** The attack starts now: reads the baseline that {@link firstLimitAfterMs} counts from. */
  async arm(): Promise<void> {
    const base = await this.#node.counters();
    this.#base = limitCount(base);
    this.#started = Date.now();
  }

  /** Stops polling, nothing read (a case that failed). Idempotent. */
  cancel(): void {
    clearInterval(this.#timer);
  }

  /** Stops polling; returns the limit counters that rose, with their increase. */
  async stop(): Promise<Record<string, number>> {
    clearInterval(this.#timer);
    const final = await this.#node.counters();
    if (Object.keys(final).length > 0) this.last = final;
    return this.last;
  }
}

/**
 * The pace of {@link pacedFlood}ers: a factor (0..1] of their nominal rate, lowered when the
 * node reports drops of the kind a paced flooder must not cause (`dropped.*-limited`, read from
 * `GET /v1/info`) and raised again slowly while none come. So a flooder that meant to stay just
 * under the limits stays under them even when the node charges differently than assumed (a
 * size-aware pubmsg cost, say).
 */
export class Pace {
  factor = 1;
  /** `dropped.*-limited` counted while pacing (should stay near 0). */
  drops = 0;
  /** How often the factor was lowered. */
  slowdowns = 0;
  /** Highest `/v1/info` memory figures seen while pacing (bytes, by name: `heapUsedBytes`, ...). */
  readonly peakMemory: Record<string, number> = {};
  readonly #timer: NodeJS.Timeout;
  #last: number | undefined;
  #quietTicks = 0;
  #busy = false;

  constructor(node: NodeProcess, intervalMs = 250) {
    const poll = (): void => {
      if (this.#busy) return;
      this.#busy = true;
      void node
        .info()
        .then(({ counters, memory }) => {
          const c = counters ?? {};
          for (const [name, value] of Object.entries(memory ?? {}))
            this.peakMemory[name] = Math.max(this.peakMemory[name] ?? 0, value);
          let sum = 0;
          for (const [name, value] of Object.entries(c))
            if (/^dropped\..*limited$/.test(name)) sum += value;
          if (this.#last !== undefined && sum > this.#last) {
            this.drops += sum - this.#last;
            this.factor = Math.max(0.05, this.factor * 0.7);
            this.slowdowns++;
            this.#quietTicks = 0;
          } else if (++this.#quietTicks >= 4) {
            this.factor = Math.min(1, this.factor + 0.05);
            this.#quietTicks = 0;
          }
          this.#last = sum;
        })
        .finally(() => (this.#busy = false));
    };
    poll();
    this.#timer = setInterval(poll, intervalMs);
  }

  /** One more sample of the node's memory and counters (at the end of a flood). */
  async sample(node: NodeProcess): Promise<void> {
    const { memory } = await node.info();
    for (const [name, value] of Object.entries(memory ?? {}))
      this.peakMemory[name] = Math.max(this.peakMemory[name] ?? 0, value);
  }

  /** Stops polling. */
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Options of {@link pacedFlood}. */
export interface PacedFloodOptions {
  /** Lines per second at pace factor 1. */
  readonly ratePerSecond: number;
  readonly durationMs: number;
  readonly maxLines: number;
  /** Shared pace (lowered when the node reports drops); default: always 1. */
  readonly pace?: Pace;
  /** Checked every tick: true ends the flood early (its goal is reached). */
  readonly done?: () => boolean;
  /**
   * Checked every tick: true holds sending (self-clocking: the node's readers have not caught up
   * yet). Time held earns no credit: the flooder never bursts above its rate afterwards.
   */
  readonly hold?: () => boolean;
  /** Called for every line written (shared counters of several flooders). */
  readonly onSend?: () => void;
}

/**
 * A flooder that paces itself: `line` at `ratePerSecond` × the pace factor, in ticks of 10 ms,
 * never more than 50 ms of credit at once (so no burst above the rate), until `durationMs`,
 * `maxLines`, `done()`, or the node closed it. It keeps its connection open afterwards (the
 * caller closes it). Resolves with what it sent.
 */
export async function pacedFlood(
  peer: RawPeer,
  line: Buffer,
  options: PacedFloodOptions,
): Promise<FloodStats> {
  const started = Date.now();
  const deadline = started + options.durationMs;
  const stats: FloodStats = { nick: peer.nick, sent: 0, disconnectedAfterMs: undefined };
  let ended = false;
  void peer.closed().then(() => {
    if (!ended) stats.disconnectedAfterMs = (peer.closedAt ?? Date.now()) - started;
  });
  let credit = 0;
  let last = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const rate = options.ratePerSecond * (options.pace?.factor ?? 1);
      credit = Math.min(credit + ((now - last) / 1000) * rate, Math.max(1, rate * 0.05));
      last = now;
      if (
        Date.now() >= deadline ||
        !peer.open ||
        stats.sent >= options.maxLines ||
        options.done?.() === true
      ) {
        clearInterval(timer);
        ended = true;
        resolve();
        return;
      }
      if (options.hold?.() === true || peer.socket.writableLength > 0) return;
      while (credit >= 1 && stats.sent < options.maxLines && options.hold?.() !== true) {
        credit -= 1;
        stats.sent++;
        peer.write(line);
        options.onSend?.();
      }
    }, 10);
  });
  return stats;
}

/**
 * Writes `probe` to every socket in `sockets` that is still open, every `intervalMs`, until the
 * returned function is called. A socket that does not read never sees the other side close it;
 * a write does: once the node closed its end, the write is answered with a reset and the socket
 * closes (`close` event), paused or not. The probe must be something the node ignores (an
 * unknown message type for a peer; a pipelined request for an HTTP stream).
 */
export function probeClosed(
  sockets: readonly net.Socket[],
  probe: Buffer,
  intervalMs = 100,
): () => void {
  const timer = setInterval(() => {
    for (const socket of sockets) if (!socket.destroyed) socket.write(probe);
  }, intervalMs);
  return () => {
    clearInterval(timer);
  };
}
