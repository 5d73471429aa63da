/**
 * An in-memory {@link MessageChannelCore} for the joinmarketd tests: cores on one FakeNetwork
 * exchange pubmsgs and privmsgs directly. It does what the interface promises (NaCl keys
 * inserted in `!fill`/`!pubkey`, encryption, signing through the signer, verification through the
 * verifier, an orderbook) with stand-ins: each nick has a fixed NaCl key, and "encryption" maps
 * plaintexts to ciphertexts from a table (the recorded ones in the replay), so the daemon's boxes
 * can be compared with the reference's byte for byte.
 */
import { OnionmcError } from '../../src/errors.js';
import {
  CoreListeners,
  ONION_HOSTID,
  type CoreContext,
  type CoreEvents,
  type CoreFidelityBond,
  type CoreOffer,
  type MessageChannelCore,
} from '../../src/joinmarketd/core.js';

const OFFER_TYPES = new Set([
  'reloffer',
  'absoffer',
  'swreloffer',
  'swabsoffer',
  'sw0reloffer',
  'sw0absoffer',
]);
const ENCRYPTED = new Set(['auth', 'ioauth', 'tx', 'sig']);

/** One entry of the stand-in cipher. */
export interface CipherEntry {
  readonly cmd: string;
  readonly plaintext: string;
  readonly ciphertext: string;
}

/** Cores that can reach each other, by nick. */
export class FakeNetwork {
  readonly cores = new Map<string, FakeCore>();
  /** Every privmsg line delivered, in order: `from -> to: !cmd ...`. */
  readonly privmsgs: { from: string; to: string; line: string }[] = [];
  /** Every pubmsg sent. */
  readonly pubmsgs: { from: string; message: string }[] = [];
  readonly #cipher: CipherEntry[];
  readonly #keys: ReadonlyMap<string, string>;

  constructor(cipher: CipherEntry[], keys: ReadonlyMap<string, string>) {
    this.#cipher = cipher;
    this.#keys = keys;
  }

  keyOf(nick: string): string {
    return this.#keys.get(nick) ?? 'ee'.repeat(32);
  }

  encrypt(cmd: string, plaintext: string): string {
    const entry = this.#cipher.find((e) => e.cmd === cmd && e.plaintext === plaintext);
    return entry?.ciphertext ?? `ENC(${Buffer.from(plaintext).toString('base64')})`;
  }

  decrypt(cmd: string, ciphertext: string): string {
    const entry = this.#cipher.find((e) => e.cmd === cmd && e.ciphertext === ciphertext);
    if (entry !== undefined) return entry.plaintext;
    const m = /^ENC\((.*)\)$/.exec(ciphertext);
    if (m === null) throw new OnionmcError('ERR_CRYPTO', 'cannot decrypt');
    return Buffer.from(m[1] ?? '', 'base64').toString();
  }
}

/** A core on a {@link FakeNetwork}. */
export class FakeCore implements MessageChannelCore {
  readonly hostid = ONION_HOSTID;
  readonly #network: FakeNetwork;
  readonly #context: CoreContext;
  readonly #listeners = new CoreListeners();
  readonly #offers = new Map<string, CoreOffer>();
  readonly #bonds = new Map<string, CoreFidelityBond>();
  #up = false;
  stopped = false;

  constructor(network: FakeNetwork, context: CoreContext) {
    this.#network = network;
    this.#context = context;
  }

  get nick(): string {
    return this.#context.nick;
  }

  get context(): CoreContext {
    return this.#context;
  }

  get isUp(): boolean {
    return this.#up;
  }

  start(): Promise<void> {
    this.#network.cores.set(this.nick, this);
    setImmediate(() => {
      this.#up = true;
      this.#emit('up', {});
    });
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.#up = false;
    if (this.#network.cores.get(this.nick) === this) this.#network.cores.delete(this.nick);
    return Promise.resolve();
  }

  on<K extends keyof CoreEvents>(event: K, listener: (event: CoreEvents[K]) => void): () => void {
    return this.#listeners.on(event, listener);
  }

  #emit<K extends keyof CoreEvents>(event: K, payload: CoreEvents[K]): void {
    this.#listeners.emit(event, payload);
  }

  pubmsg(message: string): void {
    if (!this.#up) throw new OnionmcError('ERR_NOT_ROUTABLE', 'not up');
    this.#network.pubmsgs.push({ from: this.nick, message });
    for (const core of this.#network.cores.values()) {
      if (core !== this) core.receivePubmsg(this.nick, message);
    }
  }

  async privmsg(nick: string, cmd: string, body: string): Promise<void> {
    const target = this.#network.cores.get(nick);
    if (target === undefined) throw new OnionmcError('ERR_NOT_ROUTABLE', `no route to ${nick}`);
    let wire = body;
    if (cmd === 'fill') {
      const args = body.split(' ');
      wire = [args[0], args[1], this.#network.keyOf(this.nick), args[2]].join(' ');
    } else if (cmd === 'pubkey') {
      const key = this.#network.keyOf(this.nick);
      wire = body === '' ? key : `${key} ${body}`;
    } else if (ENCRYPTED.has(cmd)) {
      wire = this.#network.encrypt(cmd, body);
    }
    const signed = await this.#context.signer({ nick, cmd, msg: wire, hostid: this.hostid });
    const line = `!${cmd} ${signed}`;
    this.#network.privmsgs.push({ from: this.nick, to: nick, line });
    await target.receivePrivmsg(this.nick, line);
  }

  canReach(nick: string): boolean {
    return this.#network.cores.has(nick);
  }

  orderbook(): CoreOffer[] {
    return [...this.#offers.values()].sort((a, b) =>
      a.counterparty === b.counterparty ? a.oid - b.oid : a.counterparty < b.counterparty ? -1 : 1,
    );
  }

  fidelityBonds(): CoreFidelityBond[] {
    return [...this.#bonds.values()];
  }

  /** Makes `nick` leave (as a directory's peerlist would say). */
  leave(nick: string): void {
    for (const [key, offer] of this.#offers)
      if (offer.counterparty === nick) this.#offers.delete(key);
    this.#emit('nickLeave', { nick });
  }

  #learnOffers(from: string, message: string): void {
    for (const segment of message.split('!').filter((s) => s !== '')) {
      const f = segment.split(' ');
      if (f[0] === 'tbond' && f[1] !== undefined) {
        this.#bonds.set(from, { counterparty: from, takernick: this.nick, proof: f[1] });
        continue;
      }
      if (!OFFER_TYPES.has(f[0] ?? '') || f.length < 6) continue;
      this.#offers.set(`${from} ${f[1] ?? ''}`, {
        counterparty: from,
        oid: Number(f[1]),
        ordertype: f[0] ?? '',
        minsize: Number(f[2]),
        maxsize: Number(f[3]),
        txfee: Number(f[4]),
        cjfee: f[5] ?? '',
      });
    }
  }

  receivePubmsg(from: string, message: string): void {
    if (!this.#up) return;
    this.#learnOffers(from, message);
    this.#emit('pubmsg', { from, message, hostid: this.hostid });
  }

  async receivePrivmsg(from: string, line: string): Promise<void> {
    const parts = line.slice(1).split(' ');
    const cmd = parts[0] ?? '';
    const pubkey = parts[parts.length - 2] ?? '';
    const sig = parts[parts.length - 1] ?? '';
    const raw = parts.slice(1, -2).join(' ');
    const ok = await this.#context.verifier({
      nick: from,
      msg: raw + this.hostid,
      fullmsg: line,
      sig,
      pubkey,
      hostid: this.hostid,
    });
    if (!ok || this.stopped) return;
    if (OFFER_TYPES.has(cmd)) this.#learnOffers(from, `!${cmd} ${raw}`);
    const tokens = raw.split(' ');
    if (cmd === 'fill') {
      const peerKeyHex = tokens[2] ?? '';
      tokens.splice(2, 1);
      this.#emit('privmsg', {
        from,
        cmd,
        body: tokens.join(' '),
        hostid: this.hostid,
        peerKeyHex,
        ownKeyHex: this.#network.keyOf(this.nick),
      });
      return;
    }
    if (cmd === 'pubkey') {
      this.#emit('privmsg', {
        from,
        cmd,
        body: tokens.slice(1).join(' '),
        hostid: this.hostid,
        peerKeyHex: tokens[0] ?? '',
      });
      return;
    }
    const body = ENCRYPTED.has(cmd) ? this.#network.decrypt(cmd, tokens.join('')) : raw;
    this.#emit('privmsg', { from, cmd, body, hostid: this.hostid });
  }
}
