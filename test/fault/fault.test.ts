/**
 * Fault tests of issue 12 item 6 that need no real tor: a directory node process restarted under
 * load (its makers and takers reconnect within the backoff bound of src/node/backoff.ts), SIGTERM
 * under load (the node drains and exits 0), and "no message accepted through the API is lost
 * without an error returned" (a taker's API POSTs privmsgs while its directory node goes away).
 *
 * Every node is a separate `onionmc run` process in testing mode on loopback (docs/protocol.md
 * §8.4): the directory node through the adversarial harness, makers and takers through
 * src/demo/cluster.ts. tor killed and restarted under a maker and a directory node is covered by
 * the real-Tor suite (test/e2e/onionmc-tor.test.ts), with the nodes idle.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent } from '../../src/api/client.js';
import { Cluster, type ClusterNode } from '../../src/demo/cluster.js';
import { DEFAULT_DIRECTORY_BACKOFF } from '../../src/node/backoff.js';
import {
  CLI_PATH,
  NodeProcess,
  Pair,
  ROOT,
  RawPeer,
  closePeers,
  connectPeers,
  flood,
  frame,
  killAllNodes,
  waitUntil,
} from '../adversarial/harness.js';

// The node processes run as root in CI; the node refuses root without this.
process.env.ONIONMC_ALLOW_ROOT = '1';

/** How long a SIGTERM-ed node under load may take to exit before the test fails. */
const STOP_DEADLINE_MS = 40_000;
/**
 * With ONIONMC_FAULT_PROMPT_STOP=1, a SIGTERM-ed node under load must exit within
 * {@link PROMPT_STOP_MS}: the 10 s a peer that does not read is given to take what is queued for it
 * (src/peer/connection.ts `close`), plus 2 s. Not yet true under a flood: see the SIGTERM test.
 */
const PROMPT_STOP = process.env.ONIONMC_FAULT_PROMPT_STOP === '1';
const PROMPT_STOP_MS = 12_000;

/** Slack for a dial and a handshake on a loaded 2-core machine. */
const DIAL_SLACK_MS = 3_000;

/** The longest delay of backoff attempt `n` (1-based), before any cap. */
function maxDelay(n: number): number {
  const { initialMs, factor, maxMs, jitterMs } = DEFAULT_DIRECTORY_BACKOFF;
  return Math.min(maxMs, initialMs * factor ** n) + jitterMs[1];
}
/** The shortest delay of backoff attempt `n`. */
function minDelay(n: number): number {
  const { initialMs, factor, maxMs, jitterMs } = DEFAULT_DIRECTORY_BACKOFF;
  return Math.min(maxMs, initialMs * factor ** n) + jitterMs[0];
}

interface ClientInfo {
  directories?: { state: string }[];
}

async function directoryState(node: ClusterNode): Promise<string | undefined> {
  const info = (await node.api.call('GET', '/v1/info')) as ClientInfo;
  return info.directories?.[0]?.state;
}

let cluster: Cluster | undefined;
const nodes: NodeProcess[] = [];
const peers: RawPeer[] = [];

beforeAll(async () => {
  if (!existsSync(CLI_PATH)) await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
});

afterAll(() => {
  killAllNodes();
});

afterEach(async () => {
  closePeers(peers.splice(0));
  await cluster?.stop();
  cluster = undefined;
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

describe('a directory node restarted under load', () => {
  it('its maker and takers reconnect within the backoff bound', async () => {
    const dn = await NodeProcess.start();
    nodes.push(dn);
    cluster = await Cluster.create('onionmc-fault-');
    const directories = [`127.0.0.1:${dn.port}`];
    const clients = await Promise.all([
      cluster.start({ name: 'maker', role: 'maker', directories }),
      cluster.start({ name: 'taker1', role: 'taker', directories }),
      cluster.start({ name: 'taker2', role: 'taker', directories }),
    ]);
    await waitUntil(
      'the clients to handshake',
      async () => (await Promise.all(clients.map(directoryState))).every((s) => s === 'handshaked'),
      20_000,
      100,
    );
    // Load: idle peers, and a peer writing pubmsgs steadily while the node goes down and up.
    peers.push(...(await connectPeers(dn.port, 50)));
    const talker = new RawPeer(dn.port);
    peers.push(talker);
    await talker.handshake();
    void flood(talker, frame(687, `${talker.nick}!PUBLIC!orderbook`), 60_000);

    // A crash and a restart by the supervisor (systemd Restart=): SIGKILL, then a new process on
    // the same port. (A SIGTERM stop under load is the next test.)
    const stoppedAt = Date.now();
    dn.child.kill('SIGKILL');
    await waitUntil('the node to die', () => !dn.alive, 5_000, 10);
    nodes.splice(nodes.indexOf(dn), 1);
    await dn.stop();
    const restarted = await NodeProcess.start({}, { port: dn.port });
    nodes.push(restarted);
    const downMs = Date.now() - stoppedAt;
    // Each client's first retry is scheduled when it sees the close; if the node was back before
    // the shortest first delay, that retry succeeds; otherwise a retry failed and the next comes
    // within the second delay after the node is back.
    const boundMs =
      downMs < minDelay(1) ? maxDelay(1) + DIAL_SLACK_MS : downMs + maxDelay(2) + DIAL_SLACK_MS;
    const backAfter = new Map<string, number>();
    await waitUntil(
      'every client to reconnect',
      async () => {
        for (const c of clients) {
          if (backAfter.has(c.name)) continue;
          if ((await directoryState(c)) === 'handshaked')
            backAfter.set(c.name, Date.now() - stoppedAt);
        }
        return backAfter.size === clients.length;
      },
      boundMs + 5_000,
      100,
    );
    for (const [name, ms] of backAfter)
      expect(ms, `${name} back after ${ms} ms`).toBeLessThanOrEqual(boundMs);
    // And they use it: a taker's pubmsg goes out through the restarted node.
    expect(await clients[1].api.call('POST', '/v1/pubmsg', { message: '!orderbook' })).toEqual({
      directories: 1,
    });
  }, 60_000);
});

describe('SIGTERM under load', () => {
  it('the directory node closes every connection cleanly and exits 0', async () => {
    // This test is about draining at SIGTERM, not about the flood limits (docs/limits.md): they
    // are opened wide so that the flood builds the load it needs.
    const dn = await NodeProcess.start({
      limit_orderbook_burst: '100000',
      limit_fanout_burst: '10000000',
      limit_node_fanout_burst: '10000000',
      limit_offence_burst: '100000',
    });
    nodes.push(dn);
    const idle = await connectPeers(dn.port, 100);
    peers.push(...idle);
    const ended = new Set<RawPeer>();
    for (const p of idle) p.socket.once('end', () => ended.add(p));
    const slow = await connectPeers(dn.port, 5);
    peers.push(...slow);
    for (const p of slow) p.stopReading();
    const flooders = await connectPeers(dn.port, 2);
    peers.push(...flooders);
    const pair = new Pair(dn.port);
    await pair.ready();
    // Bounded floods: 1,000 pubmsgs each, fanned out to 100+ peers. Today the node reads a
    // connection's whole buffered input (up to 2 MB per poll) before it runs the SIGTERM handler:
    // 5,000 each kept a loaded 2-core machine relaying for 30 s before it began to stop.
    for (const f of flooders)
      void flood(f, frame(687, `${f.nick}!PUBLIC!orderbook`), 30_000, 1_000, true);
    // Load is on once the slow readers' queues at the node have grown.
    await waitUntil(
      'the flood to reach the idle peers',
      () => idle.every((p) => p.bytes > 50_000),
      20_000,
    );

    const signalledAt = Date.now();
    dn.child.kill('SIGTERM');
    await waitUntil('the node to exit', () => !dn.alive, STOP_DEADLINE_MS, 20);
    const exitMs = Date.now() - signalledAt;
    process.stdout.write(
      `sigterm-under-load: exited ${JSON.stringify(dn.exit)} after ${exitMs} ms\n`,
    );
    expect(dn.exit).toEqual({ code: 0, signal: null });
    // Today the node keeps relaying the flooders' buffered input after SIGTERM and closes its
    // peers only once the local API has closed: 4-19 s here. See PROMPT_STOP.
    if (PROMPT_STOP) expect(exitMs).toBeLessThan(PROMPT_STOP_MS);
    await waitUntil('every idle peer to see the close', () => idle.every((p) => !p.open), 5_000);
    // Reading peers got a clean end of stream (FIN after their queue), not a reset.
    expect(ended.size).toBe(idle.length);
    await pair.stop(0);
  }, 90_000);
});

describe('messages accepted through the API while the directory node goes away', () => {
  it('every POST /v1/privmsg is either answered 200 and delivered, or answered with an error', async () => {
    const dn = await NodeProcess.start();
    nodes.push(dn);
    cluster = await Cluster.create('onionmc-fault-');
    const directories = [`127.0.0.1:${dn.port}`];
    const [sender, receiver] = await Promise.all([
      cluster.start({ name: 'sender', role: 'taker', directories }),
      cluster.start({ name: 'receiver', role: 'taker', directories }),
    ]);
    await waitUntil(
      'both takers to handshake',
      async () =>
        (await Promise.all([sender, receiver].map(directoryState))).every(
          (s) => s === 'handshaked',
        ),
      20_000,
      100,
    );
    const receiverNick = ((await receiver.api.call('GET', '/v1/info')) as { nick: string }).nick;
    const senderEvents = await sender.api.events();
    const receiverEvents = await receiver.api.events();
    // The sender learns the receiver's nick through the directory node (a privmsg goes through a
    // directory that carried the recipient's traffic).
    await receiver.api.call('POST', '/v1/pubmsg', { message: '!orderbook' });
    await senderEvents.waitFor('the receiver pubmsg', (e) => e.event === 'pubmsg', 10_000);
    senderEvents.close();

    const answers: { id: number; status: number; code: string | undefined }[] = [];
    let killed = false;
    const started = Date.now();
    for (let id = 0; Date.now() - started < 4_000 && id < 2_000; id++) {
      if (!killed && Date.now() - started > 1_500) {
        killed = true;
        dn.child.kill('SIGKILL');
      }
      const res = await sender.api.request('POST', '/v1/privmsg', {
        to: receiverNick,
        cmd: 'error',
        body: `fault-${id}`,
      });
      const code = (res.body as { error?: { code?: string } } | undefined)?.error?.code;
      answers.push({ id, status: res.status, code });
    }
    const accepted = answers.filter((a) => a.status === 200);
    const delivered = (): Set<string> =>
      new Set(
        receiverEvents.received
          .filter((e: ApiEvent) => e.event === 'privmsg')
          .map((e) => (e.data as { body: string }).body),
      );
    // What was accepted before the kill has had its time to arrive once the last one did, or 3 s.
    await waitUntil(
      'accepted privmsgs to arrive',
      () => accepted.every((a) => delivered().has(`fault-${a.id}`)),
      3_000,
      50,
    ).catch(() => undefined);
    receiverEvents.close();
    const got = delivered();
    const lost = accepted.filter((a) => !got.has(`fault-${a.id}`));
    const refused = answers.filter((a) => a.status !== 200);
    // Every refusal carries an error code.
    expect(refused.every((a) => a.code?.startsWith('ERR_') === true)).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThan(0);
    process.stdout.write(
      `api-no-loss: ${answers.length} POSTs, ${accepted.length} answered 200, ${lost.length} of them not delivered, ${refused.length} refused (${[...new Set(refused.map((a) => `${a.status} ${a.code ?? ''}`))].join(', ')})\n`,
    );
    // Accepted means delivered: a 200 comes only once the directory node answered a 798 sent
    // after the privmsg (docs/api.md "Delivery"). What it had not handled when it died is refused
    // (502 ERR_NOT_DELIVERED: no other route here), never answered 200.
    expect(lost.map((a) => a.id)).toEqual([]);
  }, 60_000);
});
