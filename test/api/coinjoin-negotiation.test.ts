/**
 * A whole CoinJoin negotiation as applications perform it on the local API (docs/api.md "A
 * CoinJoin negotiation"): a scripted maker application and a scripted taker application, each
 * talking only HTTP to its own daemon (testing mode, loopback), run orderbook, fill, pubkey, auth,
 * ioauth, tx, sig, push and hp2 once through the directory node and once over a direct link.
 *
 * The signatures are real secp256k1 Bitcoin-message signatures (src/message/signing.ts) made with
 * test-data keys: the maker signs its own NaCl session key (`ownKeyHex` of its `fill` event) with
 * its utxo key as `btc_sig`, and the taker verifies it over the maker's key from `!pubkey`
 * (`peerKeyHex`), as JoinMarket's taker does (R: jmclient/taker.py `auth_counterparty`). The
 * maker's fidelity-bond proof is made per requesting taker and answered through
 * `POST /v1/orderbook/answer` (`answer_orderbook = false`).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hexToBytes } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, type ApiEvent, type EventStream } from '../../src/api/client.js';
import { parseConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log.js';
import {
  publicKeyHexFromPrivateKey,
  signMessage,
  verifyMessage,
} from '../../src/message/signing.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { pollUntil } from '../helpers/poll.js';
import { BoundServer } from '../helpers/ports.js';

const WAIT_MS = 5_000;
const TEST_BACKOFF = {
  initialMs: 50,
  factor: 1,
  maxMs: 50,
  jitterMs: [0, 0] as const,
  stableMs: 60_000,
};

/** Test-data keys (never funds): the maker's utxo key and fidelity-bond key, the taker's utxo key. */
const MAKER_UTXO_KEY = hexToBytes('1c'.repeat(32));
const MAKER_BOND_KEY = hexToBytes('2d'.repeat(32));
const TAKER_UTXO_KEY = hexToBytes('3e'.repeat(32));
const MAKER_UTXO = `${'ab'.repeat(32)}:1`;
const TAKER_UTXO = `${'cd'.repeat(32)}:0`;
/** A relative fee with more decimals than a double keeps (ng's cjfee_factor gives such fees). */
const LONG_CJFEE = '0.000021234567890123456789';
const OFFERS = [
  { type: 'sw0reloffer', oid: 0, minsize: 27_300, maxsize: 5_000_000, txfee: 0, cjfee: LONG_CJFEE },
  { type: 'sw0absoffer', oid: 1, minsize: 50_000, maxsize: 3_000_000, txfee: 0, cjfee: '250' },
];

function configText(servingPort: number, directory: string, api: string, extra: string[]): string {
  return [
    '[BLOCKCHAIN]',
    'network = testnet',
    '[MESSAGING:onion]',
    'type = onion',
    'onion_serving_host = 127.0.0.1',
    `onion_serving_port = ${servingPort}`,
    'hidden_service_dir =',
    `directory_nodes = ${directory}`,
    'regtest_count = 1,1',
    `api = unix:${api}`,
    ...extra,
    '',
  ].join('\n');
}

function matches(name: string, fields: Record<string, unknown>): (e: ApiEvent) => boolean {
  return (e) => {
    if (e.event !== name || typeof e.data !== 'object' || e.data === null) return false;
    const data = e.data as Record<string, unknown>;
    return Object.entries(fields).every(([k, v]) => data[k] === v);
  };
}

interface PrivmsgData {
  from: string;
  cmd: string;
  body: string;
  via: { kind: string; location?: string };
  encrypted: boolean;
  ownKeyHex?: string;
  peerKeyHex?: string;
}

/** The bond proof the maker application makes for one taker nick (test data: a signature over it). */
function bondProofFor(takerNick: string): string {
  return Buffer.from(
    `${publicKeyHexFromPrivateKey(MAKER_BOND_KEY)}|${signMessage(MAKER_BOND_KEY, takerNick)}`,
  ).toString('base64');
}

/**
 * The scripted maker application: offers, per-taker orderbook answers with a bond, and the maker's
 * half of the negotiation; every privmsg it receives is recorded.
 */
class MakerApp {
  readonly received: PrivmsgData[] = [];
  readonly api: ApiClient;
  readonly #events: EventStream;
  /** `direct`: answer over the route the daemon chooses; `directory`: only through directory nodes. */
  route: 'any' | 'directory' = 'directory';
  /** The session key the maker signed per taker (its kphex). */
  readonly signedKeys = new Map<string, string>();
  failure: unknown;

  constructor(api: ApiClient, events: EventStream) {
    this.api = api;
    this.#events = events;
  }

  async start(): Promise<void> {
    await this.api.call('PUT', '/v1/offers', { offers: OFFERS });
    this.#events.on((event) => {
      this.#onEvent(event).catch((err: unknown) => {
        this.failure = err;
      });
    });
  }

  async #onEvent(event: ApiEvent): Promise<void> {
    if (event.event === 'orderbookRequest') {
      const { from } = event.data as { from: string };
      await this.api.call('POST', '/v1/orderbook/answer', {
        to: from,
        fidelityBond: bondProofFor(from),
      });
      return;
    }
    if (event.event !== 'privmsg') return;
    const msg = event.data as PrivmsgData;
    this.received.push(msg);
    const send = (cmd: string, body: string): Promise<unknown> =>
      this.api.call('POST', '/v1/privmsg', { to: msg.from, cmd, body, route: this.route });
    switch (msg.cmd) {
      case 'fill':
        await send('pubkey', '');
        return;
      case 'auth': {
        // R: jmclient/maker.py on_auth_received: btc_sig = ecdsa_sign(kphex, auth_key).
        const kphex = msg.ownKeyHex ?? '';
        this.signedKeys.set(msg.from, kphex);
        const btcSig = signMessage(MAKER_UTXO_KEY, kphex);
        const authPub = publicKeyHexFromPrivateKey(MAKER_UTXO_KEY);
        await send(
          'ioauth',
          [MAKER_UTXO, authPub, 'bcrt1qcjaddr', 'bcrt1qchange', btcSig].join(' '),
        );
        return;
      }
      case 'tx':
        await send('sig', Buffer.from(`witness-for-${MAKER_UTXO}`).toString('base64'));
        return;
      case 'hp2':
        // The maker broadcasts the commitment it was handed (R: jmdaemon on_hp2 -> pubmsg !hp2).
        await this.api.call('POST', '/v1/pubmsg', { message: `!hp2 ${msg.body}` });
        return;
      default:
    }
  }
}

describe('a CoinJoin negotiation by applications on the API (testing mode)', () => {
  let dir = '';
  const daemons: Daemon[] = [];
  const streams: EventStream[] = [];
  let directoryLocation = '';
  let maker: Daemon;
  let taker: Daemon;
  let takerApi: ApiClient;
  let takerEvents: EventStream;
  let relays: EventStream;
  let makerApp: MakerApp;

  const listeners: BoundServer[] = [];
  const start = async (
    name: string,
    listener: BoundServer,
    role: 'maker' | 'taker',
    extra: string[] = [],
  ): Promise<{ daemon: Daemon; api: ApiClient; events: EventStream }> => {
    listeners.push(listener);
    const port = listener.port;
    const socket = path.join(dir, `${name}.sock`);
    const daemon = new Daemon({
      config: parseConfig(
        configText(port, directoryLocation, socket, extra),
        path.join(dir, `${name}.cfg`),
      ),
      logger: silentLogger(),
      clientRole: role,
      backoff: TEST_BACKOFF,
      server: listener,
    });
    daemons.push(daemon);
    await daemon.start();
    const endpoint = daemon.api?.endpoint;
    if (endpoint === undefined) throw new Error('no API');
    const api = new ApiClient(endpoint);
    const events = await api.events();
    streams.push(events);
    return { daemon, api, events };
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onionmc-coinjoin-'));
    const directoryListener = await BoundServer.listen();
    directoryLocation = directoryListener.location;
    const dn = await start('directory', directoryListener, 'taker');
    relays = dn.events;
    const m = await start('maker', await BoundServer.listen(), 'maker', [
      'answer_orderbook = false',
      'features = neutrino_compat',
    ]);
    maker = m.daemon;
    makerApp = new MakerApp(m.api, m.events);
    const t = await start('taker', await BoundServer.listen(), 'taker');
    taker = t.daemon;
    takerApi = t.api;
    takerEvents = t.events;
    for (const api of [m.api, t.api]) {
      await pollUntil(
        'the directory link to handshake',
        async () => {
          const info = (await api.call('GET', '/v1/info')) as { directories: { state: string }[] };
          return info.directories.every((d) => d.state === 'handshaked') ? true : undefined;
        },
        WAIT_MS,
      );
    }
    await makerApp.start();
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const daemon of daemons.reverse()) await daemon.stop();
    for (const listener of listeners) await listener.close();
    if (dir !== '') await fs.rm(dir, { recursive: true, force: true });
  });

  /** Step 1: the orderbook, one signed privmsg per offer through the directory node, with the bond. */
  async function collectOffers(
    makerNick: string,
    takerNick: string,
    waitPrivmsg: (cmd: string) => Promise<PrivmsgData>,
  ): Promise<void> {
    // 1. Orderbook: one signed privmsg per offer, through the directory node, with the bond.
    await takerApi.call('POST', '/v1/pubmsg', { message: '!orderbook' });
    const rel = await waitPrivmsg('sw0reloffer');
    const abs = await waitPrivmsg('sw0absoffer');
    for (const offer of [rel, abs]) expect(offer.via.kind).toBe('directory');
    expect(rel.body).toBe(`0 27300 5000000 0 ${LONG_CJFEE}!tbond ${bondProofFor(takerNick)}`);
    const book = (await takerApi.call('GET', '/v1/orderbook')) as {
      offers: { nick: string; oid: number; cjfee: string; source: string; fidelityBond?: string }[];
      fidelityBonds: { nick: string; proof: string }[];
    };
    const ours = book.offers.filter((o) => o.nick === makerNick);
    expect(ours.map((o) => [o.oid, o.cjfee, o.source])).toEqual([
      [0, LONG_CJFEE, 'privmsg'],
      [1, '250', 'privmsg'],
    ]);
    // The bond was made for our nick: its signature verifies over it with the bond key.
    const [bondPub, bondSig] = Buffer.from(ours[0]?.fidelityBond ?? '', 'base64')
      .toString()
      .split('|');
    expect(verifyMessage(bondPub ?? '', bondSig ?? '', takerNick)).toBe(true);
    expect(book.fidelityBonds).toContainEqual({ nick: makerNick, proof: bondProofFor(takerNick) });
  }

  /**
   * The taker application's side of one negotiation. `fetchOrderbook` false skips step 1: a
   * repeated `!orderbook` within 30 s is a duplicate pubmsg that nodes drop (docs/protocol.md §9.3).
   */
  async function negotiate(
    route: 'any' | 'directory',
    expectedVia: string,
    fetchOrderbook = true,
  ): Promise<void> {
    const makerNick = maker.identity.nick;
    const takerNick = taker.identity.nick;
    const mark = takerEvents.received.length;
    const makerMark = makerApp.received.length;
    const after = (predicate: (e: ApiEvent) => boolean) => (e: ApiEvent) =>
      takerEvents.received.indexOf(e) >= mark && predicate(e);
    const waitPrivmsg = async (cmd: string): Promise<PrivmsgData> =>
      (
        await takerEvents.waitFor(
          `!${cmd}`,
          after(matches('privmsg', { from: makerNick, cmd })),
          WAIT_MS,
        )
      ).data as PrivmsgData;
    const send = (cmd: string, body: string): Promise<unknown> =>
      takerApi.call('POST', '/v1/privmsg', { to: makerNick, cmd, body, route });

    if (fetchOrderbook) await collectOffers(makerNick, takerNick, waitPrivmsg);

    // 2. fill -> pubkey: the taker learns the maker's session key.
    const commitment = `P${(expectedVia === 'direct' ? '12' : 'ef').repeat(32)}`;
    await send('fill', `0 1000000 ${commitment}`);
    const pubkey = await waitPrivmsg('pubkey');
    expect(pubkey).toMatchObject({ body: '', encrypted: false, via: { kind: expectedVia } });
    const makerKey = pubkey.peerKeyHex ?? '';
    expect(makerKey).toMatch(/^[0-9a-f]{64}$/);

    // 3. auth -> ioauth: the maker's btc_sig over its session key, checked as the reference taker does.
    const takerAuthPub = publicKeyHexFromPrivateKey(TAKER_UTXO_KEY);
    await send('auth', `${TAKER_UTXO}|${takerAuthPub}|${signMessage(TAKER_UTXO_KEY, commitment)}`);
    const ioauth = await waitPrivmsg('ioauth');
    expect(ioauth).toMatchObject({
      encrypted: true,
      via: { kind: expectedVia },
      peerKeyHex: makerKey,
    });
    const [utxos, authPub, , , btcSig] = ioauth.body.split(' ');
    expect(utxos).toBe(MAKER_UTXO);
    expect(verifyMessage(authPub ?? '', btcSig ?? '', makerKey)).toBe(true);
    // A btc_sig over any other key (e.g. our own session key) would have been refused.
    expect(verifyMessage(authPub ?? '', btcSig ?? '', pubkey.ownKeyHex ?? '')).toBe(false);
    expect(makerApp.signedKeys.get(takerNick)).toBe(makerKey);

    // 4. tx -> sig, then push.
    await send('tx', Buffer.from('unsigned-coinjoin-tx').toString('base64'));
    const sig = await waitPrivmsg('sig');
    expect(sig).toMatchObject({ encrypted: true, via: { kind: expectedVia } });
    await send('push', Buffer.from(`signed-coinjoin-tx-${expectedVia}`).toString('base64'));

    // 5. hp2 goes through a directory node whatever the route; the maker broadcasts it.
    const hp2 = await takerApi.call('POST', '/v1/privmsg', {
      to: makerNick,
      cmd: 'hp2',
      body: commitment.slice(1),
    });
    expect(hp2).toEqual({
      via: { kind: 'directory', location: directoryLocation },
      confirmed: true,
      attempts: 1,
    });
    await takerEvents.waitFor(
      'the broadcast !hp2',
      after(matches('pubmsg', { from: makerNick, message: `!hp2 ${commitment.slice(1)}` })),
      WAIT_MS,
    );

    // The maker saw every message decrypted (the encrypted ones) and verified, on the expected route.
    await pollUntil(
      'the maker to see !hp2',
      () => Promise.resolve(makerApp.received.some((m) => m.cmd === 'hp2') ? true : undefined),
      WAIT_MS,
    );
    const seen = makerApp.received
      .slice(makerMark)
      .filter((m) => m.from === takerNick && m.cmd !== 'error');
    expect(seen.map((m) => [m.cmd, m.encrypted, m.via.kind])).toEqual([
      ['fill', false, expectedVia],
      ['auth', true, expectedVia],
      ['tx', true, expectedVia],
      ['push', false, expectedVia],
      ['hp2', false, 'directory'],
    ]);
    const auth = seen.find((m) => m.cmd === 'auth');
    expect(auth?.body.startsWith(`${TAKER_UTXO}|`)).toBe(true);
    expect(auth).toMatchObject({ ownKeyHex: makerKey, peerKeyHex: pubkey.ownKeyHex });
    expect(makerApp.failure).toBeUndefined();
    makerApp.received.length = 0;
  }

  it('runs through the directory node: every message relayed, encrypted ones as ciphertext', async () => {
    makerApp.route = 'directory';
    await negotiate('directory', 'directory');
    const relayed = relays.received
      .filter((e) => e.event === 'relay')
      .map((e) => e.data as { cmd: string; line: string });
    for (const cmd of ['fill', 'pubkey', 'auth', 'ioauth', 'tx', 'sig', 'push', 'hp2'])
      expect(relayed.map((r) => r.cmd)).toContain(cmd);
    const ioauthLine = relayed.find((r) => r.cmd === 'ioauth')?.line ?? '';
    expect(ioauthLine).not.toContain(MAKER_UTXO);
  });

  it('runs again over a direct link (orderbook answers and !hp2 still through the directory node)', async () => {
    makerApp.route = 'any';
    // The earlier privmsgs taught the taker the maker's location; one more starts the direct dial.
    await takerApi.call('POST', '/v1/privmsg', {
      to: maker.identity.nick,
      cmd: 'error',
      body: 'hello',
    });
    await takerEvents.waitFor(
      'the direct link',
      matches('peer', { nick: maker.identity.nick, up: true }),
      WAIT_MS,
    );
    // With the direct link up, an orderbook answer still goes through the directory node.
    const bond = bondProofFor(`${taker.identity.nick}-round-2`);
    await makerApp.api.call('POST', '/v1/orderbook/answer', {
      to: taker.identity.nick,
      fidelityBond: bond,
    });
    const again = await takerEvents.waitFor(
      'the offer answered again',
      (e) =>
        matches('privmsg', { from: maker.identity.nick, cmd: 'sw0reloffer' })(e) &&
        (e.data as PrivmsgData).body.endsWith(bond),
      WAIT_MS,
    );
    expect((again.data as PrivmsgData).via).toEqual({
      kind: 'directory',
      location: directoryLocation,
    });
    await negotiate('any', 'direct', false);
  });
});
