/**
 * A running cluster (a directory node, a maker and a taker as `onionmc` processes in testing mode)
 * seen through the operator tools: `/metrics` as Prometheus text (issue 9 point 5) and the CLI
 * client `info`, `peers`, `orderbook`, `send`, `listen` and `config check` (point 7).
 */
import { spawn } from 'node:child_process';
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { Cluster, pollUntil, type ClusterNode } from '../../src/demo/cluster.js';
import { CLI_PATH, onionmc } from './cli-helpers.js';

const WAIT_MS = 30_000;
const OFFER = {
  type: 'sw0reloffer',
  oid: 0,
  minsize: 27300,
  maxsize: 1000000,
  txfee: 0,
  cjfee: '0.00002',
};

/** One sample line of a Prometheus text exposition: `name{labels} value`. */
interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/**
 * Parses Prometheus text exposition format 0.0.4: `# HELP`/`# TYPE` comments and sample lines.
 * @throws Error naming the first line that is neither.
 */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type?.[1] !== undefined && type[2] !== undefined) {
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (m?.[1] === undefined || m[3] === undefined) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] ?? ''] = l[2] ?? '';
    const value = m[3] === 'NaN' ? NaN : m[3] === '+Inf' ? Infinity : Number(m[3]);
    if (m[3] !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value: ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  return { samples, types };
}

describe('operator tools against a running cluster', { timeout: 120_000 }, () => {
  let cluster: Cluster;
  let directory: ClusterNode;
  let maker: ClusterNode;
  let taker: ClusterNode;
  let makerNick = '';
  let takerNick = '';

  const socketOf = (node: ClusterNode): string =>
    node.api.endpoint.kind === 'unix' ? node.api.endpoint.path : '';

  beforeAll(async () => {
    cluster = await Cluster.create('onionmc-ops-cluster-');
    directory = await cluster.start({ name: 'directory', role: 'directory' });
    const location = ((await directory.api.call('GET', '/v1/info')) as { location: string })
      .location;
    [maker, taker] = await Promise.all([
      cluster.start({ name: 'maker', role: 'maker', directories: [location] }),
      cluster.start({ name: 'taker', role: 'taker', directories: [location] }),
    ]);
    for (const node of [maker, taker]) {
      await pollUntil(
        `${node.name} handshaked with the directory node`,
        async () => {
          const info = (await node.api.call('GET', '/v1/info')) as {
            directories: { state: string }[];
          };
          return info.directories.every((d) => d.state === 'handshaked') ? true : undefined;
        },
        WAIT_MS,
      );
    }
    makerNick = ((await maker.api.call('GET', '/v1/info')) as { nick: string }).nick;
    takerNick = ((await taker.api.call('GET', '/v1/info')) as { nick: string }).nick;
    await maker.api.call('PUT', '/v1/offers', { offers: [OFFER] });
    await pollUntil(
      "the maker's offer in the taker's orderbook",
      async () => {
        const book = (await taker.api.call('GET', '/v1/orderbook')) as { offers: unknown[] };
        return book.offers.length > 0 ? true : undefined;
      },
      WAIT_MS,
    );
  });

  afterAll(async () => {
    await cluster.stop();
  });

  it('GET /metrics is Prometheus text with peers, messages, relays, handshakes and process metrics', async () => {
    const res = await fetchMetrics(directory);
    expect(res.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const { samples, types } = parsePrometheus(res.body);
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value;
    expect(value('onionmc_info', { role: 'directory' })).toBe(1);
    expect(value('onionmc_peers', { role: 'maker', state: 'handshaked' })).toBe(1);
    expect(value('onionmc_peers', { role: 'taker', state: 'handshaked' })).toBe(1);
    expect(value('onionmc_handshakes_total', { result: 'accepted' })).toBe(2);
    expect(value('onionmc_relayed_total', { type: 'pubmsg' })).toBeGreaterThanOrEqual(1);
    expect(types.get('onionmc_relayed_total')).toBe('counter');
    expect(types.get('onionmc_dropped_total')).toBe('counter');
    expect(types.get('onionmc_directory_reconnects_total')).toBe('counter');
    expect(types.get('onionmc_nacl_sessions_total')).toBe('counter');
    // prom-client's default metrics: process and event-loop lag.
    expect(value('onionmc_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(samples.some((s) => s.name.startsWith('onionmc_nodejs_eventloop_lag'))).toBe(true);

    const takerMetrics = parsePrometheus((await fetchMetrics(taker)).body).samples;
    expect(
      takerMetrics.find(
        (s) =>
          s.name === 'onionmc_peers' &&
          s.labels.role === 'directory' &&
          s.labels.state === 'handshaked',
      )?.value,
    ).toBe(1);
    expect(
      takerMetrics.find(
        (s) =>
          s.name === 'onionmc_messages_total' &&
          s.labels.direction === 'in' &&
          s.labels.type === 'pubmsg',
      )?.value,
    ).toBeGreaterThanOrEqual(1);
  });

  it('onionmc info: a table on a terminal, JSON with --json', async () => {
    const json = await onionmc(['info', '--socket', socketOf(taker), '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      nick: takerNick,
      role: 'taker',
      state: 'running',
      directories: [{ state: 'handshaked', lastMessageSecondsAgo: expect.any(Number) as unknown }],
    });
    const table = await onionmc(['info', '--socket', socketOf(taker)]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^role\s+taker$/m);
    expect(table.stdout).toMatch(/^directory node\s+nick\s+state\s+last message$/m);
  });

  it('onionmc orderbook and peers list the maker', async () => {
    const book = await onionmc(['orderbook', '--socket', socketOf(taker)]);
    expect(book.code).toBe(0);
    const lines = book.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^maker\s+type\s+oid\s+minsize\s+maxsize\s+txfee\s+cjfee$/);
    expect(lines.find((l) => l.startsWith(makerNick))).toMatch(
      new RegExp(`^${makerNick}\\s+sw0reloffer\\s+0\\s+27300\\s+1000000\\s+0\\s+0\\.00002$`),
    );
    const json = await onionmc(['orderbook', '--socket', socketOf(taker), '--json']);
    expect(JSON.parse(json.stdout)).toContainEqual(
      expect.objectContaining({ ...OFFER, nick: makerNick }),
    );
    const peers = await onionmc(['peers', '--socket', socketOf(directory), '--json']);
    expect((JSON.parse(peers.stdout) as { nick: string }[]).map((p) => p.nick).sort()).toEqual(
      [makerNick, takerNick].sort(),
    );
  });

  it('onionmc listen streams events; onionmc send delivers a privmsg and a pubmsg', async () => {
    const listener = spawn(
      process.execPath,
      [CLI_PATH, 'listen', '--socket', socketOf(maker), '--json', 'privmsg'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    listener.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    listener.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    try {
      // The command says on stderr when its stream is open; events from then on are printed.
      await pollUntil(
        'onionmc listen to open its stream',
        () =>
          Promise.resolve(err.includes('onionmc: listening to the events of') ? true : undefined),
        WAIT_MS,
      );
      const sent = await onionmc([
        'send',
        '--socket',
        socketOf(taker),
        makerNick,
        'error',
        'hello',
        'from',
        'the',
        'cli',
      ]);
      expect(sent).toMatchObject({ code: 0 });
      const line = await pollUntil(
        'the privmsg printed by onionmc listen',
        () => Promise.resolve(out.split('\n').find((l) => l.includes('hello from the cli'))),
        WAIT_MS,
      );
      expect(JSON.parse(line)).toMatchObject({
        event: 'privmsg',
        data: { from: takerNick, cmd: 'error', body: 'hello from the cli' },
      });
    } finally {
      listener.kill('SIGINT');
    }
    const pub = await onionmc(['send', '--socket', socketOf(taker), '--pubmsg', '!orderbook']);
    expect(pub).toMatchObject({ code: 0, stdout: 'sent to 1 directory node(s)\n' });
    const noDaemon = await onionmc(['info', '--socket', `${socketOf(taker)}.missing`]);
    expect(noDaemon.code).toBe(4);
    expect(noDaemon.stderr).toMatch(/^onionmc: no onionmc daemon answers on .* \(ENOENT\)/);
  });

  it('onionmc config check prints the effective values and the role; exit 2 on a problem', async () => {
    const ok = await onionmc(['config', 'check', '--config', directory.configFile]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^role\s+directory node \(testing mode\)$/m);
    expect(ok.stdout).toMatch(/^tor_control_password\s+\(not set\)$/m);
    const bad = await onionmc(['config', 'check', '--config', `${directory.configFile}.missing`]);
    expect(bad.code).toBe(2);
  });
});

async function fetchMetrics(node: ClusterNode): Promise<{ contentType: string; body: string }> {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const endpoint = node.api.endpoint;
    if (endpoint.kind !== 'unix') throw new Error('unix endpoint expected');
    http
      .get({ socketPath: endpoint.path, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          resolve({ contentType: String(res.headers['content-type']), body });
        });
      })
      .on('error', reject);
  });
}
