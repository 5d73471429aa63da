/**
 * The joinmarketd service beyond the recorded transcript: refusals as AMP errors, maker checks
 * of `!fill` (blacklisted commitment, unknown offer), `!hp2` both ways, `!push`, fidelity-bond
 * proofs, the taker's maker timeout and `minmakers`, and the loopback-only rule. The jmclient is
 * a scripted AMP client over loopback; the counterparty is a fake core on the same fake network.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { boxFrom, encodeBox, type AmpBox } from '../../src/amp/box.js';
import { hasCode } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { CoreContext, CorePrivmsgEvent } from '../../src/joinmarketd/core.js';
import { MAX_CHAN_DIRECTORY_NODES } from '../../src/joinmarketd/chan-config.js';
import { startJoinmarketd, type JoinmarketdServer } from '../../src/joinmarketd/server.js';
import { AmpTestClient, readable } from './amp-client.js';
import { FakeCore, FakeNetwork } from './fake-core.js';

const ONION_SECTION = {
  type: 'onion',
  directory_nodes: '127.0.0.1:5322',
  socks5_host: 'localhost',
  socks5_port: 9050,
  tor_control_host: 'localhost',
  tor_control_port: 9051,
  onion_serving_host: '127.0.0.1',
  onion_serving_port: 5323,
  hidden_service_dir: '',
  serving: true,
  passive: false,
  btcnet: 'testnet',
  'section-name': 'MESSAGING:onion',
};
const OFFER = {
  oid: 0,
  ordertype: 'sw0reloffer',
  minsize: 100000,
  maxsize: 99972700,
  txfee: 0,
  cjfee: '0.0002',
};

let server: JoinmarketdServer | undefined;
let dir: string | undefined;
const clients: AmpTestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.close();
  server = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A jmclient stand-in: signs with a dummy key and verifies everything, answers every request. */
class JmClient {
  #ask = 0;
  constructor(readonly link: AmpTestClient) {
    link.hook = (box) => {
      const command = box.get('_command')?.toString();
      const ask = box.get('_ask')?.toString();
      if (command === undefined || ask === undefined) return;
      link.send(boxFrom({ _answer: ask, accepted: 'True' }));
      const f = readable(box);
      if (command === 'JMRequestMsgSig')
        this.request('JMMsgSignature', {
          nick: f.nick ?? '',
          cmd: f.cmd ?? '',
          msg_to_return: `${f.msg ?? ''} 02aa c2ln`,
          hostid: f.hostid ?? '',
        });
      if (command === 'JMRequestMsgSigVerify')
        this.request('JMMsgSignatureVerify', {
          verif_result: 'True',
          nick: f.nick ?? '',
          fullmsg: f.fullmsg ?? '',
          hostid: f.hostid ?? '',
        });
    };
  }

  /** Sends a request; returns its tag. */
  request(command: string, fields: Record<string, string | Uint8Array>): string {
    const ask = (++this.#ask).toString(16);
    this.link.send(boxFrom({ _command: command, _ask: ask, ...fields }));
    return ask;
  }

  /** Sends a request and waits for its answer or error box. */
  async call(command: string, fields: Record<string, string | Uint8Array> = {}): Promise<AmpBox> {
    const ask = this.request(command, fields);
    await this.link.until(
      () =>
        this.link.received.some(
          (b) => b.get('_answer')?.toString() === ask || b.get('_error')?.toString() === ask,
        ),
      `answer to ${command}`,
    );
    const index = this.link.received.findIndex(
      (b) => b.get('_answer')?.toString() === ask || b.get('_error')?.toString() === ask,
    );
    const [box] = this.link.received.splice(index, 1);
    if (box === undefined) throw new Error('unreachable');
    return box;
  }

  /** Waits for a request `command` from the daemon and returns its fields. */
  async expectRequest(command: string): Promise<Record<string, string>> {
    const box = await this.link
      .until(
        () => this.link.received.some((b) => b.get('_command')?.toString() === command),
        command,
      )
      .then(() => {
        const index = this.link.received.findIndex(
          (b) => b.get('_command')?.toString() === command,
        );
        return this.link.received.splice(index, 1)[0];
      });
    return readable(box ?? boxFrom({}));
  }

  /** JMInit, JMStartMC, JMUp, JMSetup. */
  async start(
    nick: string,
    role: 'MAKER' | 'TAKER',
    init: { blacklist: string; timeout?: number; minmakers?: number; fidelity?: boolean },
  ): Promise<void> {
    const initAnswer = await this.call('JMInit', {
      bcsource: 'no-blockchain',
      network: 'testnet',
      chan_configs: JSON.stringify([{ ...ONION_SECTION, serving: role === 'MAKER' }]),
      minmakers: String(init.minmakers ?? 1),
      maker_timeout_sec: String(init.timeout ?? 10),
      dust_threshold: '27300',
      blacklist_location: init.blacklist,
    });
    expect(readable(initAnswer).accepted).toBe('True');
    await this.expectRequest('JMInitProto');
    await this.call('JMStartMC', { nick });
    await this.expectRequest('JMUp');
    const setup = await this.call('JMSetup', {
      role,
      initdata: role === 'MAKER' ? JSON.stringify([OFFER]) : 'null',
      use_fidelity_bond: init.fidelity === true ? 'True' : 'False',
    });
    expect(readable(setup).accepted).toBe('True');
    await this.expectRequest('JMSetupDone');
  }
}

/** What each core of {@link setup} was created with, in order. */
const coreContexts: CoreContext[] = [];

async function setup(): Promise<{ network: FakeNetwork; client: JmClient; datadir: string }> {
  dir = await mkdtemp(path.join(tmpdir(), 'onionmc-jmd-'));
  const network = new FakeNetwork([], new Map());
  server = await startJoinmarketd({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger(),
    createCore: (context) => {
      coreContexts.push(context);
      return new FakeCore(network, context);
    },
  });
  const link = await AmpTestClient.connect(server.port);
  clients.push(link);
  return { network, client: new JmClient(link), datadir: dir };
}

/** A counterparty on the fake network that signs and verifies without a jmclient. */
async function peer(
  network: FakeNetwork,
  nick: string,
): Promise<{ core: FakeCore; got: CorePrivmsgEvent[] }> {
  const core = new FakeCore(network, {
    nick,
    config: { ...ONION_SECTION } as never,
    network: 'testnet',
    signer: (r) => Promise.resolve(`${r.msg} 02bb c2ln`),
    verifier: () => Promise.resolve(true),
  });
  const got: CorePrivmsgEvent[] = [];
  core.on('privmsg', (e) => got.push(e));
  await core.start();
  await new Promise<void>((resolve) => {
    if (core.isUp) resolve();
    else
      core.on('up', () => {
        resolve();
      });
  });
  return { core, got };
}

describe('joinmarketd service', () => {
  it('refuses IRC sections, unknown commands and bad arguments with AMP errors', async () => {
    const { client, datadir } = await setup();
    const init = await client.call('JMInit', {
      bcsource: 'x',
      network: 'testnet',
      chan_configs: JSON.stringify([
        { 'section-name': 'MESSAGING:server1', host: 'irc.example' },
        ONION_SECTION,
      ]),
      minmakers: '1',
      maker_timeout_sec: '10',
      dust_threshold: '27300',
      blacklist_location: path.join(datadir, 'cl'),
    });
    const error = readable(init);
    expect(error._error_code).toBe('UNSUPPORTED_MESSAGE_CHANNEL');
    expect(error._error_description).toContain('MESSAGING:server1');
    expect(error._error_description).toContain('irc');
    expect(readable(await client.call('JMFrobnicate'))).toEqual({
      _error: '2',
      _error_code: 'UNHANDLED',
      _error_description: "Unhandled Command: b'JMFrobnicate'",
    });
    expect(readable(await client.call('JMUp'))._error_code).toBe('UNHANDLED');
    expect(readable(await client.call('JMStartMC'))._error_code).toBe('UNKNOWN');
    expect(readable(await client.call('JMStartMC', { nick: 'J5x' }))._error_code).toBe('BAD_STATE');
    // 32,000 levels of nesting in one 64 KiB value: refused as a bad argument, before anything
    // recurses through it (printing it overflowed the stack).
    const deep = await client.call('JMInit', {
      bcsource: 'x',
      network: 'testnet',
      chan_configs: `[{"type": "onion", "directory_nodes": ${'['.repeat(32_000)}${']'.repeat(32_000)}}]`,
      minmakers: '1',
      maker_timeout_sec: '10',
      dust_threshold: '27300',
      blacklist_location: path.join(datadir, 'cl'),
    });
    expect(readable(deep)).toMatchObject({
      _error_code: 'UNKNOWN',
      _error_description: 'JMInit: argument "chan_configs": nests deeper than 10',
    });
    // The refused JMInit sent no JMInitProto.
    expect(client.link.received.map((b) => b.get('_command')?.toString())).toEqual([]);
  });

  it('handles the boxes that come before a broken one in the same chunk, as Twisted does, then disconnects', async () => {
    const { client } = await setup();
    // A whole box, then a key length of 256 (AMP allows 255), in one write.
    client.link.sendRaw(
      Buffer.concat([
        encodeBox(boxFrom({ _command: 'JMFrobnicate', _ask: '7' })),
        Buffer.from('0100', 'hex'),
      ]),
    );
    expect(readable(await client.link.take('error#7'))._error_code).toBe('UNHANDLED');
    await client.link.whenClosed();
  });

  it(`JMInit: directory_nodes lists each directory node once, and more than ${MAX_CHAN_DIRECTORY_NODES} are refused naming the cap`, async () => {
    // Each entry became a directory link the node dials: some 6,000 entries fit one 64 KiB value,
    // duplicates included.
    const { client, datadir } = await setup();
    const init = (directoryNodes: string[]): Promise<AmpBox> =>
      client.call('JMInit', {
        bcsource: 'x',
        network: 'testnet',
        chan_configs: JSON.stringify([
          { ...ONION_SECTION, directory_nodes: directoryNodes.join(',') },
        ]),
        minmakers: '1',
        maker_timeout_sec: '10',
        dust_threshold: '27300',
        blacklist_location: path.join(datadir, 'cl'),
      });
    const many = Array.from(
      { length: MAX_CHAN_DIRECTORY_NODES + 1 },
      (_, i) => `127.0.0.1:${i + 1}`,
    );
    const refused = readable(await init(many));
    expect(refused._error_code).toBe('UNSUPPORTED_MESSAGE_CHANNEL');
    expect(refused._error_description).toContain(
      `directory_nodes lists ${MAX_CHAN_DIRECTORY_NODES + 1} directory nodes, at most ${MAX_CHAN_DIRECTORY_NODES}`,
    );
    const repeated = Array.from({ length: 4_000 }, () => '127.0.0.1:5322');
    expect(readable(await init(repeated))).toMatchObject({ accepted: 'True' });
    expect(readable(await client.call('JMStartMC', { nick: 'J5xxxxxxxxxxxxxx' }))).toMatchObject({
      accepted: 'True',
    });
    expect(coreContexts.at(-1)?.config.directoryNodes).toEqual(['127.0.0.1:5322']);
  });

  it('maker: answers !orderbook, refuses blacklisted commitments and unknown offers, relays !push and !hp2', async () => {
    const { network, client, datadir } = await setup();
    const blacklist = path.join(datadir, 'commitmentlist');
    const used = 'cd'.repeat(32);
    await writeFile(blacklist, `${'ab'.repeat(32)}\n${used.toUpperCase()}`);
    await client.start('J5maker', 'MAKER', { blacklist });
    // The maker announced its offer by pubmsg.
    expect(network.pubmsgs).toEqual([
      { from: 'J5maker', message: '!sw0reloffer 0 100000 99972700 0 0.0002' },
    ]);
    const taker = await peer(network, 'J5taker');
    const other = await peer(network, 'J5other');
    other.core.pubmsg('!sw0reloffer 0 1 2 0 0.1');
    taker.core.pubmsg('!orderbook');
    await client.link.until(() => taker.got.length === 1, 'offer privmsg');
    expect(taker.got[0]).toMatchObject({
      from: 'J5maker',
      cmd: 'sw0reloffer',
      body: '0 100000 99972700 0 0.0002',
    });
    await taker.core.privmsg('J5maker', 'fill', `0 20000000 P${used}`);
    await client.link.until(() => taker.got.length === 2, '!error');
    expect(taker.got[1]).toMatchObject({
      cmd: 'error',
      body: `Commitment is blacklisted: ${used}`,
    });
    // ... and the used commitment went to another maker as !hp2.
    await client.link.until(() => other.got.length === 1, '!hp2');
    expect(other.got[0]).toMatchObject({ cmd: 'hp2', body: used });
    await taker.core.privmsg('J5maker', 'fill', `7 20000000 P${'ef'.repeat(32)}`);
    await client.link.until(() => taker.got.length === 3, 'oid not found');
    expect(taker.got[2]).toMatchObject({ cmd: 'error', body: 'oid not found' });
    await taker.core.privmsg('J5maker', 'fill', `0 20000000 P${'ef'.repeat(32)}`);
    await client.link.until(() => taker.got.length === 4, '!pubkey');
    expect(taker.got[3]).toMatchObject({ cmd: 'pubkey', peerKeyHex: network.keyOf('J5maker') });
    await taker.core.privmsg('J5maker', 'push', Buffer.from('rawtx').toString('base64'));
    expect(await client.expectRequest('JMTXBroadcast')).toMatchObject({
      tx: 'rawtx',
    });
    // A commitment transferred to us is broadcast; one broadcast by another maker is recorded.
    await other.core.privmsg('J5maker', 'hp2', 'AA'.repeat(32));
    await client.link.until(
      () => network.pubmsgs.some((p) => p.message.startsWith('!hp2')),
      '!hp2',
    );
    expect(network.pubmsgs.at(-1)).toEqual({ from: 'J5maker', message: `!hp2 ${'aa'.repeat(32)}` });
    other.core.pubmsg(`!hp2 ${'12'.repeat(32)}`);
    await client.link.until(() => true, 'tick');
    const recorded = async (): Promise<string> => readFile(blacklist, 'ascii');
    for (let i = 0; i < 2000 && !(await recorded()).includes('12'.repeat(32)); i++)
      await new Promise<void>((resolve) => setImmediate(resolve));
    // Appended: the lines already there stay as written (the upper-case one matched all the same).
    expect((await recorded()).split('\n')).toEqual([
      'ab'.repeat(32),
      used.toUpperCase(),
      '12'.repeat(32),
    ]);
  });

  it('maker: records one !hp2 per pubmsg, and only commitments of 64 hex characters', async () => {
    // One 39 kB pubmsg of 4,334 `!hp2 ab` made every maker read and append to the blacklist file
    // 4,334 times, its JMIOAuth answers waiting behind them.
    const { network, client, datadir } = await setup();
    const blacklist = path.join(datadir, 'commitmentlist');
    await client.start('J5maker', 'MAKER', { blacklist });
    const other = await peer(network, 'J5other');
    const recorded = async (): Promise<string[]> =>
      (await readFile(blacklist, 'ascii').catch(() => '')).split('\n');
    const until = async (commitment: string): Promise<void> => {
      for (let i = 0; i < 2000 && !(await recorded()).includes(commitment); i++)
        await new Promise<void>((resolve) => setImmediate(resolve));
    };
    other.core.pubmsg(`!hp2 ${'11'.repeat(32)}!hp2 ${'22'.repeat(32)}${'!hp2 ab'.repeat(100)}`);
    other.core.pubmsg(`!hp2 ab!hp2 ${'33'.repeat(32)}`);
    other.core.pubmsg(`!hp2 ${'44'.repeat(32)}`);
    // The blacklist is written in order: once the last is in, every earlier one would be.
    await until('44'.repeat(32));
    expect(await recorded()).toEqual(['11'.repeat(32), '44'.repeat(32)]);
  });

  it('maker with a fidelity bond: asks the client for a proof per taker and appends !tbond', async () => {
    const { network, client, datadir } = await setup();
    await client.start('J5maker', 'MAKER', { blacklist: path.join(datadir, 'cl'), fidelity: true });
    const taker = await peer(network, 'J5taker');
    taker.core.pubmsg('!orderbook');
    expect(await client.expectRequest('JMFidelityBondProofRequest')).toMatchObject({
      takernick: 'J5taker',
      makernick: 'J5maker',
    });
    await client.call('JMFidelityBondProof', { nick: 'J5taker', proof: 'PROOF' });
    await client.link.until(() => taker.got.length === 1, 'offer');
    expect(taker.got[0]?.body).toBe('0 100000 99972700 0 0.0002!tbond PROOF');
    expect(taker.core.fidelityBonds()).toEqual([
      { counterparty: 'J5maker', takernick: 'J5taker', proof: 'PROOF' },
    ]);
  });

  it('taker: fails the fill after maker_timeout_sec below minmakers, naming the silent makers; pushes', async () => {
    const { network, client, datadir } = await setup();
    const maker = await peer(network, 'J5maker');
    await client.start('J5taker', 'TAKER', {
      blacklist: path.join(datadir, 'cl'),
      timeout: 0,
      minmakers: 1,
    });
    expect(network.pubmsgs).toEqual([{ from: 'J5taker', message: '!orderbook' }]);
    maker.core.pubmsg('!sw0reloffer 0 100 99972700 0 0.0002');
    await client.call('JMRequestOffers');
    const offers = await client.expectRequest('JMOffers');
    // minsize below dust_threshold is raised to it, as jmdaemon's orderbook does.
    expect(JSON.parse(offers['orderbook.0'] ?? '')).toEqual([
      {
        counterparty: 'J5maker',
        oid: 0,
        ordertype: 'sw0reloffer',
        minsize: 27300,
        maxsize: 99972700,
        txfee: 0,
        cjfee: '0.0002',
      },
    ]);
    expect(offers['fidelitybonds.0']).toBe('[]');
    const fill = await client.call('JMFill', {
      amount: '20000000',
      commitment: `P${'ab'.repeat(32)}`,
      revelation: 'rev',
      filled_offers: JSON.stringify({ J5maker: { ...OFFER, counterparty: 'J5maker' } }),
    });
    expect(readable(fill).accepted).toBe('True');
    const response = await client.expectRequest('JMFillResponse');
    expect(response).toMatchObject({ success: 'False', ioauth_data: '["J5maker"]' });
    await client.link.until(() => maker.got.length === 1, '!fill');
    expect(maker.got[0]).toMatchObject({ cmd: 'fill', body: `0 20000000 P${'ab'.repeat(32)}` });
    // JMMakeTx is refused after a failed fill; JMPushTx sends !push.
    expect(
      readable(
        await client.call('JMMakeTx', {
          nick_list: Buffer.concat([Buffer.from('0007', 'hex'), Buffer.from('J5maker')]),
          tx: Buffer.from('tx'),
        }),
      ).accepted,
    ).toBe('False');
    await client.call('JMPushTx', { nick: 'J5maker', tx: Buffer.from('signedtx') });
    await client.link.until(() => maker.got.length === 2, '!push');
    expect(maker.got[1]).toMatchObject({
      cmd: 'push',
      body: Buffer.from('signedtx').toString('base64'),
    });
  });

  it("taker: a maker's !ioauth too large for JMFillResponse is dropped; the fill fails at the timeout", async () => {
    // 14,001 utxos of "a" are 70,000 bytes of JSON: past the 65,535 an AMP value holds. Encoding
    // JMFillResponse threw from the maker-timeout timer, and the daemon exited.
    const { network, client, datadir } = await setup();
    const evil = await peer(network, 'J5evil');
    await client.start('J5taker', 'TAKER', {
      blacklist: path.join(datadir, 'cl'),
      timeout: 1,
      minmakers: 1,
    });
    const fill = await client.call('JMFill', {
      amount: '20000000',
      commitment: `P${'ab'.repeat(32)}`,
      revelation: '"rev"',
      filled_offers: JSON.stringify({
        J5evil: { ...OFFER, counterparty: 'J5evil' },
        J5silent: { ...OFFER, counterparty: 'J5silent' },
      }),
    });
    expect(readable(fill).accepted).toBe('True');
    await evil.core.privmsg('J5taker', 'pubkey', '');
    // Resolves once the taker's daemon has handled it.
    await evil.core.privmsg('J5taker', 'ioauth', `${'a,'.repeat(14_000)}a pub cj ch sig`);
    expect([...(server?.sessions ?? [])][0]?.dropped.get('oversized-ioauth')).toBe(1);
    const response = await client.expectRequest('JMFillResponse');
    expect(response).toMatchObject({ success: 'False', ioauth_data: '["J5evil", "J5silent"]' });
  });

  it("taker: with one maker's !ioauth too large, the fill goes on with the others", async () => {
    // Every maker answered, so JMFillResponse was sent at once: it threw into the core's listener
    // after the state had moved on, and the wallet never heard back.
    const { network, client, datadir } = await setup();
    const evil = await peer(network, 'J5evil');
    const good = await peer(network, 'J5good');
    await client.start('J5taker', 'TAKER', {
      blacklist: path.join(datadir, 'cl'),
      timeout: 2,
      minmakers: 1,
    });
    await client.call('JMFill', {
      amount: '20000000',
      commitment: `P${'ab'.repeat(32)}`,
      revelation: '"rev"',
      filled_offers: JSON.stringify({
        J5evil: { ...OFFER, counterparty: 'J5evil' },
        J5good: { ...OFFER, counterparty: 'J5good' },
      }),
    });
    await good.core.privmsg('J5taker', 'pubkey', '');
    await evil.core.privmsg('J5taker', 'pubkey', '');
    await good.core.privmsg('J5taker', 'ioauth', 'u:0 pub cj ch sig');
    await evil.core.privmsg('J5taker', 'ioauth', `${'a,'.repeat(14_000)}a pub cj ch sig`);
    const response = await client.expectRequest('JMFillResponse');
    expect(response.success).toBe('True');
    expect(JSON.parse(response.ioauth_data ?? '')).toEqual({
      J5good: [['u:0'], 'pub', 'cj', 'ch', 'sig', network.keyOf('J5good')],
    });
    expect([...(server?.sessions ?? [])][0]?.dropped.get('oversized-ioauth')).toBe(1);
  });

  it("maker: a taker's !auth too large for JMAuthReceived is dropped and counted", async () => {
    // 12,000 U+0001 are 72,002 bytes as JSON; encoding JMAuthReceived threw into the listener.
    const { network, client, datadir } = await setup();
    await client.start('J5maker', 'MAKER', { blacklist: path.join(datadir, 'cl') });
    const taker = await peer(network, 'J5taker');
    await taker.core.privmsg('J5maker', 'fill', `0 20000000 P${'ef'.repeat(32)}`);
    await client.link.until(() => taker.got.length === 1, '!pubkey');
    await taker.core.privmsg('J5maker', 'auth', '\u0001'.repeat(12_000));
    expect([...(server?.sessions ?? [])][0]?.dropped.get('oversized-auth')).toBe(1);
    await taker.core.privmsg('J5maker', 'auth', 'rev');
    expect(await client.expectRequest('JMAuthReceived')).toMatchObject({ revelation: '"rev"' });
  });

  it('taker: a maker_timeout_sec past what a timer holds waits (cut to ~24.8 days); a negative one is refused', async () => {
    // Over 2^31 - 1 ms, Node fired the timer after 1 ms (TimeoutOverflowWarning): the fill failed
    // before any maker could answer.
    const { network, client, datadir } = await setup();
    const negative = await client.call('JMInit', {
      bcsource: 'x',
      network: 'testnet',
      chan_configs: JSON.stringify([ONION_SECTION]),
      minmakers: '1',
      maker_timeout_sec: '-1',
      dust_threshold: '27300',
      blacklist_location: path.join(datadir, 'cl'),
    });
    expect(readable(negative)).toMatchObject({
      _error_code: 'UNKNOWN',
      _error_description: 'JMInit: maker_timeout_sec must be 0 or more, got -1',
    });
    const maker = await peer(network, 'J5maker');
    await client.start('J5taker', 'TAKER', {
      blacklist: path.join(datadir, 'cl'),
      timeout: 3_000_000,
      minmakers: 1,
    });
    await client.call('JMFill', {
      amount: '20000000',
      commitment: `P${'ab'.repeat(32)}`,
      revelation: '"rev"',
      filled_offers: JSON.stringify({ J5maker: { ...OFFER, counterparty: 'J5maker' } }),
    });
    await client.link.until(() => maker.got.length === 1, '!fill');
    await maker.core.privmsg('J5taker', 'pubkey', '');
    await maker.core.privmsg('J5taker', 'ioauth', 'u:0 pub cj ch sig');
    const response = await client.expectRequest('JMFillResponse');
    expect(response.success).toBe('True');
  });

  it('listens on loopback only unless told otherwise', async () => {
    await expect(
      startJoinmarketd({
        host: '0.0.0.0',
        port: 0,
        logger: silentLogger(),
        createCore: () => {
          throw new Error('x');
        },
      }),
    ).rejects.toSatisfy((err: unknown) => hasCode(err, 'ERR_CONFIG'));
  });
});
