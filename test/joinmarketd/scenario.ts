/**
 * The joinmarketd end-to-end scenario (issue 11 point 4), shared by the in-process variant
 * (node-e2e.test.ts: joinmarketd servers in the test's process) and the process variant
 * (process-e2e.test.ts: `onionmc joinmarketd` and `onionmc run` processes): scripted jmclient
 * wallets over AMP, each holding a real nick key: it signs what the daemon asks
 * (JMRequestMsgSig) and verifies what it is asked to (JMRequestMsgSigVerify), as jmclient's
 * `client_protocol.py` does. A maker announces an offer, a taker collects the orderbook, fills it
 * and runs the negotiation to the push; every privmsg is signed by the sender's wallet and
 * verified by the receiver's.
 */
import path from 'node:path';
import { expect } from 'vitest';
import { boxFrom, type AmpBox } from '../../src/amp/box.js';
import { encodeListOfUnicode } from '../../src/amp/arguments.js';
import {
  createNickIdentity,
  nickMatchesPublicKey,
  type NickIdentity,
} from '../../src/message/nick.js';
import { verifyMessage } from '../../src/message/signing.js';
import type { AmpTestClient } from './amp-client.js';
import { readable } from './amp-client.js';

/** Where a scenario runs: a directory node, a way to get a wallet on a fresh joinmarketd. */
export interface Rig {
  /** The directory node's location, `127.0.0.1:<port>`. */
  readonly directoryLocation: string;
  /** A folder for the wallets' `blacklist_location` files. */
  readonly dir: string;
  /** A scripted wallet connected to its own joinmarketd (a new one per call). */
  startWallet(): Promise<Wallet>;
}

export const OFFER = {
  oid: 0,
  ordertype: 'sw0reloffer',
  minsize: 100000,
  maxsize: 99972700,
  txfee: 0,
  cjfee: '0.0002',
};
export const COMMITMENT = `P${'65'.repeat(32)}`;
export const REVELATION = `${'66'.repeat(32)}:0|02${'8b'.repeat(32)}|03${'98'.repeat(32)}|${'81'.repeat(32)}|${'b4'.repeat(32)}`;
/** A jmclient stand-in holding a real nick key. */
export class Wallet {
  #ask = 0;
  readonly identity: NickIdentity = createNickIdentity();
  /** Every JMRequestMsgSig and JMRequestMsgSigVerify the daemon sent, in order. */
  readonly signed: Record<string, string>[] = [];
  readonly verified: Record<string, string>[] = [];
  /** The wallet's verdict on each of {@link verified}, same order. */
  readonly verdicts: boolean[] = [];

  constructor(readonly link: AmpTestClient) {
    link.hook = (box) => {
      const command = box.get('_command')?.toString();
      const ask = box.get('_ask')?.toString();
      if (command === undefined || ask === undefined) return;
      link.send(boxFrom({ _answer: ask, accepted: 'True' }));
      const f = readable(box);
      if (command === 'JMRequestMsgSig') {
        // jmclient on_JM_REQUEST_MSGSIG: sign msg_to_be_signed, return "msg pubkey sig".
        this.signed.push(f);
        const sig = this.identity.sign(f.msg_to_be_signed ?? '');
        this.request('JMMsgSignature', {
          nick: f.nick ?? '',
          cmd: f.cmd ?? '',
          msg_to_return: `${f.msg ?? ''} ${this.identity.publicKeyHex} ${sig}`,
          hostid: f.hostid ?? '',
        });
      }
      if (command === 'JMRequestMsgSigVerify') {
        // jmclient on_JM_REQUEST_MSGSIG_VERIFY: signature over msg, and the nick hash.
        this.verified.push(f);
        const ok =
          verifyMessage(f.pubkey ?? '', f.sig ?? '', f.msg ?? '') &&
          nickMatchesPublicKey(f.nick ?? '', f.pubkey ?? '');
        this.verdicts.push(ok);
        this.request('JMMsgSignatureVerify', {
          verif_result: ok ? 'True' : 'False',
          nick: f.nick ?? '',
          fullmsg: f.fullmsg ?? '',
          hostid: f.hostid ?? '',
        });
      }
    };
  }

  get nick(): string {
    return this.identity.nick;
  }

  request(command: string, fields: Record<string, string | Uint8Array>): string {
    const ask = (++this.#ask).toString(16);
    this.link.send(boxFrom({ _command: command, _ask: ask, ...fields }));
    return ask;
  }

  async call(command: string, fields: Record<string, string | Uint8Array> = {}): Promise<AmpBox> {
    const ask = this.request(command, fields);
    const isAnswer = (b: AmpBox): boolean =>
      b.get('_answer')?.toString() === ask || b.get('_error')?.toString() === ask;
    await this.link.until(() => this.link.received.some(isAnswer), `answer to ${command}`);
    const index = this.link.received.findIndex(isAnswer);
    const [box] = this.link.received.splice(index, 1);
    if (box === undefined) throw new Error('unreachable');
    return box;
  }

  async expectRequest(command: string, ms = 10_000): Promise<Record<string, string>> {
    const is = (b: AmpBox): boolean => b.get('_command')?.toString() === command;
    await this.link.until(() => this.link.received.some(is), command, ms);
    const [box] = this.link.received.splice(this.link.received.findIndex(is), 1);
    return readable(box ?? boxFrom({}));
  }

  /** Waits until the wallet was asked to verify a privmsg matching `predicate`. */
  async verifiedWhere(
    what: string,
    predicate: (f: Record<string, string>) => boolean,
  ): Promise<Record<string, string>> {
    await this.link.until(() => this.verified.some(predicate), what, 10_000);
    const found = this.verified.find(predicate);
    if (found === undefined) throw new Error('unreachable');
    return found;
  }

  /** JMInit, JMStartMC, JMUp, JMSetup as jmclient sends them. */
  async start(
    role: 'MAKER' | 'TAKER',
    directoryLocation: string,
    blacklist: string,
    fidelityBond = false,
  ): Promise<void> {
    const section = {
      type: 'onion',
      directory_nodes: directoryLocation,
      regtest_count: '1,1',
      socks5_host: 'localhost',
      socks5_port: 9050,
      tor_control_host: 'localhost',
      tor_control_port: 9051,
      onion_serving_host: '127.0.0.1',
      onion_serving_port: 0,
      hidden_service_dir: '',
      serving: role === 'MAKER',
      passive: false,
      btcnet: 'testnet',
      'section-name': 'MESSAGING:onion',
    };
    const init = await this.call('JMInit', {
      bcsource: 'regtest',
      network: 'testnet',
      chan_configs: JSON.stringify([section]),
      minmakers: '1',
      maker_timeout_sec: '30',
      dust_threshold: '27300',
      blacklist_location: blacklist,
    });
    expect(readable(init).accepted).toBe('True');
    await this.expectRequest('JMInitProto');
    expect(readable(await this.call('JMStartMC', { nick: this.nick })).accepted).toBe('True');
    await this.expectRequest('JMUp');
    const setup = await this.call('JMSetup', {
      role,
      initdata: role === 'MAKER' ? JSON.stringify([OFFER]) : 'null',
      use_fidelity_bond: fidelityBond ? 'True' : 'False',
    });
    expect(readable(setup).accepted).toBe('True');
    await this.expectRequest('JMSetupDone');
  }
}

/** Maker and taker up to the `!fill` the maker's wallet verified. */
export async function upToFill(
  rig: Rig,
): Promise<{ maker: Wallet; taker: Wallet; fillMsg: string }> {
  {
    const maker = await rig.startWallet();
    await maker.start('MAKER', rig.directoryLocation, path.join(rig.dir, 'maker-blacklist'));
    const taker = await rig.startWallet();
    await taker.start('TAKER', rig.directoryLocation, path.join(rig.dir, 'taker-blacklist'));

    // The taker's !orderbook pubmsg: the maker's daemon answers by privmsg, signed by the maker's
    // wallet, checked by the taker's wallet.
    const offerSig = await maker.expectRequest('JMRequestMsgSig');
    expect(offerSig).toMatchObject({
      nick: taker.nick,
      cmd: 'sw0reloffer',
      msg: '0 100000 99972700 0 0.0002',
      msg_to_be_signed: '0 100000 99972700 0 0.0002onion-network',
      hostid: 'onion-network',
    });
    const offerVerify = await taker.verifiedWhere('the offer privmsg', (f) =>
      (f.fullmsg ?? '').startsWith('!sw0reloffer '),
    );
    expect(offerVerify).toMatchObject({
      nick: maker.nick,
      msg: '0 100000 99972700 0 0.0002onion-network',
      pubkey: maker.identity.publicKeyHex,
      hostid: 'onion-network',
    });

    // JMRequestOffers → JMOffers with the maker's offer, from the node's orderbook. The offer is
    // recorded once the taker's wallet answered the verification: ask again until it is there
    // (bounded; each round waits for the daemon's JMOffers, no sleeps).
    let book: unknown[] = [];
    let bonds: unknown;
    for (let round = 0; round < 20 && book.length === 0; round++) {
      expect(readable(await taker.call('JMRequestOffers')).accepted).toBe('True');
      const offers = await taker.expectRequest('JMOffers');
      book = JSON.parse(offers['orderbook.0'] ?? '') as unknown[];
      bonds = JSON.parse(offers['fidelitybonds.0'] ?? '');
    }
    expect(book).toEqual([{ counterparty: maker.nick, ...OFFER }]);
    expect(bonds).toEqual([]);

    // JMFill → !fill, the daemon's NaCl key inserted, signed by the taker's wallet, verified by
    // the maker's wallet.
    const fill = await taker.call('JMFill', {
      amount: '20000000',
      commitment: COMMITMENT,
      revelation: REVELATION,
      filled_offers: JSON.stringify({ [maker.nick]: { counterparty: maker.nick, ...OFFER } }),
    });
    expect(readable(fill).accepted).toBe('True');
    const fillSig = await taker.expectRequest('JMRequestMsgSig');
    expect(fillSig.nick).toBe(maker.nick);
    expect(fillSig.cmd).toBe('fill');
    expect(fillSig.msg).toMatch(new RegExp(`^0 20000000 [0-9a-f]{64} ${COMMITMENT}$`));
    const fillVerify = await maker.verifiedWhere('the !fill', (f) =>
      (f.fullmsg ?? '').startsWith('!fill '),
    );
    expect(fillVerify).toMatchObject({
      nick: taker.nick,
      msg: `${fillSig.msg ?? ''}onion-network`,
      pubkey: taker.identity.publicKeyHex,
    });
    return { maker, taker, fillMsg: fillSig.msg ?? '' };
  }
}

/** The privmsg command a wallet was asked to verify (`!fill ...` → `fill`). */
function verifiedCommand(f: Record<string, string>): string {
  return /^!(\S+)/.exec(f.fullmsg ?? '')?.[1] ?? '';
}

/**
 * The whole negotiation, from JMInit to JMTXBroadcast: !orderbook, offer, !fill, !pubkey, !auth,
 * !ioauth, !tx, !sig, !push; then checks that every privmsg either wallet received was verified
 * by it and passed, and which commands each verified.
 */
export async function wholeNegotiation(rig: Rig): Promise<void> {
  const { maker, taker, fillMsg } = await upToFill(rig);
  const takerKey = fillMsg.split(' ')[2] ?? '';

  // Maker: !fill → !pubkey with its own session key; the taker answers !auth (encrypted), and
  // the maker's wallet gets JMAuthReceived with that key as kphex.
  const auth = await maker.expectRequest('JMAuthReceived');
  expect(auth).toMatchObject({
    nick: taker.nick,
    commitment: COMMITMENT.slice(1),
    // JsonEncodable here (Unicode in JMFill), as in the reference transcript.
    revelation: JSON.stringify(REVELATION),
    amount: '20000000',
  });
  const kphex = auth.kphex ?? '';
  expect(kphex).toMatch(/^[0-9a-f]{64}$/);
  expect(kphex).not.toBe(takerKey);
  const pubkeySig = maker.signed.find((f) => f.cmd === 'pubkey');
  expect(pubkeySig?.msg).toBe(kphex);

  // JMIOAuth → encrypted !ioauth → the taker's JMFillResponse with the maker's key.
  const utxos = { [`${'61'.repeat(32)}:0`]: { value: 100000000, address: 'tb1qmaker' } };
  const ioauth = await maker.call('JMIOAuth', {
    nick: taker.nick,
    utxolist: JSON.stringify(utxos),
    pubkey: `03${'c5'.repeat(32)}`,
    cjaddr: 'tb1qcj',
    changeaddr: 'tb1qchange',
    pubkeysig: 'c2ln',
  });
  expect(readable(ioauth).accepted).toBe('True');
  const fillResponse = await taker.expectRequest('JMFillResponse');
  expect(fillResponse.success).toBe('True');
  expect(JSON.parse(fillResponse.ioauth_data ?? '')).toEqual({
    [maker.nick]: [
      [`${'61'.repeat(32)}:0`],
      `03${'c5'.repeat(32)}`,
      'tb1qcj',
      'tb1qchange',
      'c2ln',
      kphex,
    ],
  });

  // JMMakeTx → encrypted !tx → the maker's JMTXReceived.
  const tx = Buffer.from('0200000001deadbeef', 'hex');
  const makeTx = await taker.call('JMMakeTx', {
    nick_list: encodeListOfUnicode([maker.nick]),
    tx,
  });
  expect(readable(makeTx).accepted).toBe('True');
  const received = await maker.expectRequest('JMTXReceived');
  expect(received.nick).toBe(taker.nick);
  expect(received.tx).toBe(`hex:${tx.toString('hex')}`);

  // JMTXSigs → encrypted !sig → the taker's JMSigReceived.
  await maker.call('JMTXSigs', {
    nick: taker.nick,
    sigs: encodeListOfUnicode(['c2lnbmF0dXJl']),
  });
  expect(await taker.expectRequest('JMSigReceived')).toMatchObject({
    nick: maker.nick,
    sig: 'c2lnbmF0dXJl',
  });

  // JMPushTx → !push → the maker's JMTXBroadcast.
  await taker.call('JMPushTx', { nick: maker.nick, tx });
  expect((await maker.expectRequest('JMTXBroadcast')).tx).toBe(`hex:${tx.toString('hex')}`);

  // Every privmsg each wallet received went through its verification and passed.
  for (const wallet of [maker, taker]) {
    expect(wallet.verdicts).toHaveLength(wallet.verified.length);
    expect(wallet.verdicts.every((ok) => ok)).toBe(true);
  }
  expect(new Set(maker.verified.map(verifiedCommand))).toEqual(
    new Set(['fill', 'auth', 'tx', 'push']),
  );
  expect(new Set(taker.verified.map(verifiedCommand))).toEqual(
    new Set(['sw0reloffer', 'pubkey', 'ioauth', 'sig']),
  );
}

/** A maker with a fidelity bond: the proof made for the taker, `!tbond`, JMOffers `fidelitybonds`. */
export async function bondScenario(rig: Rig): Promise<void> {
  const maker = await rig.startWallet();
  await maker.start('MAKER', rig.directoryLocation, path.join(rig.dir, 'maker-blacklist'), true);
  const taker = await rig.startWallet();
  await taker.start('TAKER', rig.directoryLocation, path.join(rig.dir, 'taker-blacklist'));
  const request = await maker.expectRequest('JMFidelityBondProofRequest');
  expect(request).toMatchObject({ takernick: taker.nick, makernick: maker.nick });
  const proof = Buffer.alloc(252, 7).toString('base64');
  await maker.call('JMFidelityBondProof', { nick: taker.nick, proof });
  await taker.verifiedWhere('the offer with !tbond', (f) =>
    (f.fullmsg ?? '').includes(`!tbond ${proof}`),
  );
  let bonds: unknown[] = [];
  for (let round = 0; round < 20 && bonds.length === 0; round++) {
    await taker.call('JMRequestOffers');
    const offers = await taker.expectRequest('JMOffers');
    bonds = JSON.parse(offers['fidelitybonds.0'] ?? '') as unknown[];
  }
  expect(bonds).toEqual([{ counterparty: maker.nick, takernick: taker.nick, proof }]);
}
