/**
 * The daemon side of JoinMarket's client-daemon link for one jmclient connection: jmdaemon's
 * `JMDaemonServerProtocol` (jmdaemon/daemon_protocol.py, message_channel.py) on onionmc's node
 * through {@link MessageChannelCore}. Policy only: the AMP session owns the socket, the core owns
 * the message channel and the NaCl sessions. docs/joinmarketd.md lists where it differs from
 * jmdaemon.
 *
 * Flow (both roles): JMInit (validate `chan_configs`) → JMInitProto; JMStartMC(nick) → core
 * started → JMUp; JMSetup → JMSetupDone, then a taker pubmsgs `!orderbook` and a maker announces
 * its offers. Every privmsg the core sends is signed by the client (JMRequestMsgSig →
 * JMMsgSignature), every privmsg it receives is verified by the client (JMRequestMsgSigVerify →
 * JMMsgSignatureVerify).
 */
import type { Duplex } from 'node:stream';
import { AMP_MAX_VALUE_BYTES } from '../amp/box.js';
import { pyFloatRepr, pyJsonDumpsValue, type JsonValue } from '../amp/arguments.js';
import { AMP_UNKNOWN, type JmResponse } from '../amp/commands.js';
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import { AmpCommandError, AmpSession, type AmpResponders } from './amp-session.js';
import { canonicalizeCommitment, CommitmentBlacklist } from './blacklist.js';
import { ChanConfigError, parseChanConfigs } from './chan-config.js';
import type {
  CoreFactory,
  CorePrivmsgEvent,
  CorePubmsgEvent,
  MessageChannelCore,
  NickSignRequest,
  NickVerifyRequest,
  OnionChannelConfig,
} from './core.js';

/** Nick format constants sent in JMInitProto (jmdaemon/protocol.py). */
export const NICK_HASH_LENGTH = 10;
/**
 * Base58 characters of a nick after its header and version digit (jmdaemon/protocol.py
 * `NICK_MAX_ENCODED`).
 */
export const NICK_MAX_ENCODED = 14;
/** First character of every nick (jmdaemon/protocol.py `JOINMARKET_NICK_HEADER`). */
export const JOINMARKET_NICK_HEADER = 'J';
/** Protocol version, JMInitProto's `joinmarket_version` (jmdaemon/protocol.py `JM_VERSION`). */
export const JM_VERSION = 5;
/** PoDLE commitment types a maker accepts (jmdaemon/protocol.py `COMMITMENT_PREFIXES`). */
export const COMMITMENT_PREFIXES: readonly string[] = ['P'];
/** `_error_code` of a JMInit whose `chan_configs` onionmc cannot serve (IRC, several onion sections). */
export const ERROR_UNSUPPORTED_CHANNEL = 'UNSUPPORTED_MESSAGE_CHANNEL';
/** `_error_code` of a JMInit whose `blacklist_location` exists but cannot be read. */
export const ERROR_BLACKLIST_UNREADABLE = 'BLACKLIST_UNREADABLE';
/** `_error_code` of a command sent out of order (e.g. JMSetup before JMStartMC). */
export const ERROR_BAD_STATE = 'BAD_STATE';
/** A signature or verification the client has not returned after this long is given up. */
export const SIGNATURE_TIMEOUT_MS = 60_000;
/** At most this many signatures and verifications outstanding with the client. */
export const MAX_PENDING_SIGNATURES = 1024;
/** A maker answers `!orderbook` from one nick at most this often (onionmc node, ng maker). */
export const ORDERBOOK_REPLY_INTERVAL_MS = 10_000;
/** At most this many takers in a maker's active negotiations, and makers in one taker fill. */
export const MAX_ACTIVE_COUNTERPARTIES = 1000;

/**
 * Why a counterparty's message was dropped (counted in {@link JoinmarketdSession.dropped}):
 * `oversized-ioauth`, a maker's `!ioauth` that would take JMFillResponse's `ioauth_data` past
 * the 65,535 bytes an AMP value holds (the maker is treated as one that did not answer);
 * `oversized-auth`, a taker's `!auth` whose revelation does not fit JMAuthReceived.
 */
export type JoinmarketdDropReason = 'oversized-ioauth' | 'oversized-auth';

/** Bytes of `value` as JsonEncodable writes it (Python `json.dumps`, ASCII). */
function jsonBytes(value: JsonValue): number {
  return pyJsonDumpsValue(value).length;
}

/**
 * Longest `maker_timeout_sec` honoured, s: Node's timers hold at most 2^31 - 1 ms (about 24.8
 * days) and fire after 1 ms beyond that. A longer one from JMInit is cut to this.
 */
export const MAX_MAKER_TIMEOUT_SEC = Math.floor((2 ** 31 - 1) / 1000);

/** Options of a {@link JoinmarketdSession}. */
export interface JoinmarketdSessionOptions {
  readonly createCore: CoreFactory;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly signatureTimeoutMs?: number;
}

type Role = 'MAKER' | 'TAKER';

interface InitData {
  readonly minmakers: number;
  readonly makerTimeoutSec: number;
  readonly dustThreshold: number;
  readonly network: string;
  readonly blacklist: CommitmentBlacklist;
  readonly config: OnionChannelConfig;
}

/** A maker's negotiation with one taker (jmdaemon `active_orders[nick]`, without the keys). */
interface MakerOrder {
  readonly offer: Record<string, JsonValue>;
  readonly amount: number;
  readonly commit: string;
  readonly kphex: string;
  cjaddr?: string;
  changeaddr?: string;
  utxos?: JsonValue;
}

/** A taker's round with its chosen makers. */
interface TakerRound {
  readonly amount: number;
  readonly commitment: string;
  readonly revelation: string;
  readonly makers: ReadonlyMap<string, Record<string, JsonValue>>;
  readonly makerKeys: Map<string, string>;
  readonly ioauth: Map<string, JsonValue>;
  /** Bytes of `ioauth` as JMFillResponse's `ioauth_data` (`{}` plus each `"nick": [...]`). */
  ioauthBytes: number;
  timer: NodeJS.Timeout | undefined;
}

interface PendingSignature extends NickSignRequest {
  readonly resolve: (signed: string) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface PendingVerify extends NickVerifyRequest {
  readonly resolve: (ok: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Python's `str()` of an offer field: ints and strings as they are, floats as Python prints them. */
function pyStr(value: JsonValue | undefined): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return pyFloatRepr(value);
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (value === null || value === undefined) return 'None';
  return pyJsonDumpsValue(value);
}

function asRecord(value: JsonValue | undefined): Record<string, JsonValue> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

/** The objects of a JSON list (offer lists); anything else gives `[]`. */
function records(value: JsonValue): Record<string, JsonValue>[] {
  if (!Array.isArray(value)) return [];
  const out: Record<string, JsonValue>[] = [];
  for (const item of value) {
    const record = asRecord(item);
    if (record !== undefined) out.push(record);
  }
  return out;
}

const OFFER_FIELDS = ['oid', 'minsize', 'maxsize', 'txfee', 'cjfee'] as const;

/** One jmclient connection served by onionmc. */
export class JoinmarketdSession {
  readonly #options: JoinmarketdSessionOptions;
  readonly #logger: Logger;
  readonly #amp: AmpSession;
  readonly #now: () => number;
  readonly #random: () => number;
  #init: InitData | undefined;
  #chanConfigsKey: string | undefined;
  #restartRequired = false;
  #core: MessageChannelCore | undefined;
  #coreUnsubscribe: (() => void)[] = [];
  #welcomed = false;
  #state = 0;
  #role: Role = 'TAKER';
  #offerlist: Record<string, JsonValue>[] = [];
  #useFidelityBond = false;
  readonly #makerOrders = new Map<string, MakerOrder>();
  #round: TakerRound | undefined;
  readonly #lastOrderbookReply = new Map<string, number>();
  #pendingSignatures: PendingSignature[] = [];
  #pendingVerifies: PendingVerify[] = [];
  readonly #dropped = new Map<JoinmarketdDropReason, number>();

  constructor(socket: Duplex, options: JoinmarketdSessionOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#amp = new AmpSession(socket, { responders: this.#responders(), logger: this.#logger });
    this.#amp.onClose(() => {
      this.#shutdown('client disconnected');
    });
  }

  /** The AMP session (for tests and the server's bookkeeping). */
  get amp(): AmpSession {
    return this.#amp;
  }

  /** Counterparty messages dropped so far, by reason (logged each time). */
  get dropped(): ReadonlyMap<JoinmarketdDropReason, number> {
    return this.#dropped;
  }

  #drop(why: JoinmarketdDropReason, from: string, bytes: number): void {
    this.#dropped.set(why, (this.#dropped.get(why) ?? 0) + 1);
    this.#logger.warn(
      { from, reason: why, bytes },
      'counterparty message too large for the jmclient; dropped',
    );
  }

  /** The core serving this client, once JMStartMC created it. */
  get core(): MessageChannelCore | undefined {
    return this.#core;
  }

  // ---- calls to the client ---------------------------------------------------------------

  /** jmdaemon's `defaultCallbacks`: a refusal or failure of the client is logged, not fatal. */
  #notify(promise: Promise<JmResponse>, what: string): void {
    promise.then(
      (response) => {
        if (!response.accepted) this.#logger.warn({ command: what }, 'client did not accept');
      },
      (err: unknown) => {
        if (!this.#amp.closed)
          this.#logger.warn({ command: what, reason: reason(err) }, 'client call failed');
      },
    );
  }

  /** The {@link NickSigner} given to the core: asks the client (JMRequestMsgSig). */
  readonly #sign = (request: NickSignRequest): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      if (this.#amp.closed) {
        reject(new OnionmcError('ERR_CLOSED', 'jmclient disconnected'));
        return;
      }
      if (this.#pendingSignatures.length + this.#pendingVerifies.length >= MAX_PENDING_SIGNATURES) {
        reject(new OnionmcError('ERR_API', 'too many signatures outstanding with the jmclient'));
        return;
      }
      const timer = setTimeout(() => {
        this.#pendingSignatures = this.#pendingSignatures.filter((p) => p.timer !== timer);
        reject(new OnionmcError('ERR_TIMEOUT', `jmclient did not sign !${request.cmd}`));
      }, this.#options.signatureTimeoutMs ?? SIGNATURE_TIMEOUT_MS);
      timer.unref();
      this.#pendingSignatures.push({ ...request, resolve, reject, timer });
      this.#notify(
        this.#amp.callRemote('JMRequestMsgSig', {
          nick: request.nick,
          cmd: request.cmd,
          msg: request.msg,
          msg_to_be_signed: request.msg + request.hostid,
          hostid: request.hostid,
        }),
        'JMRequestMsgSig',
      );
    });

  /** The {@link NickVerifier} given to the core: asks the client (JMRequestMsgSigVerify). */
  readonly #verify = (request: NickVerifyRequest): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      if (
        this.#amp.closed ||
        this.#pendingSignatures.length + this.#pendingVerifies.length >= MAX_PENDING_SIGNATURES
      ) {
        resolve(false);
        return;
      }
      const timer = setTimeout(() => {
        this.#pendingVerifies = this.#pendingVerifies.filter((p) => p.timer !== timer);
        resolve(false);
      }, this.#options.signatureTimeoutMs ?? SIGNATURE_TIMEOUT_MS);
      timer.unref();
      this.#pendingVerifies.push({ ...request, resolve, timer });
      this.#notify(
        this.#amp.callRemote('JMRequestMsgSigVerify', {
          msg: request.msg,
          fullmsg: request.fullmsg,
          sig: request.sig,
          pubkey: request.pubkey,
          nick: request.nick,
          hashlen: NICK_HASH_LENGTH,
          max_encoded: NICK_MAX_ENCODED,
          hostid: request.hostid,
        }),
        'JMRequestMsgSigVerify',
      );
    });

  // ---- sending on the channel ------------------------------------------------------------

  #privmsg(nick: string, cmd: string, body: string): void {
    const core = this.#core;
    if (core === undefined) return;
    core.privmsg(nick, cmd, body).catch((err: unknown) => {
      this.#logger.info({ to: nick, cmd, reason: reason(err) }, 'privmsg not sent');
    });
  }

  #pubmsg(message: string): void {
    try {
      this.#core?.pubmsg(message);
    } catch (err) {
      this.#logger.info({ reason: reason(err) }, 'pubmsg not sent');
    }
  }

  /** One offer line `type oid minsize maxsize txfee cjfee [minimum_tx_fee_rate]`. */
  #offerLine(offer: Record<string, JsonValue>): string {
    const fields = OFFER_FIELDS.map((k) => pyStr(offer[k]));
    if (offer.minimum_tx_fee_rate !== undefined) fields.push(pyStr(offer.minimum_tx_fee_rate));
    return `${pyStr(offer.ordertype)} ${fields.join(' ')}`;
  }

  /**
   * jmdaemon `announce_orders`: to everyone by pubmsg, one offer each; or to one taker by privmsg,
   * one offer per privmsg (as ng makers do; the reference puts all in one), the fidelity-bond
   * proof appended to the last as `!tbond <proof>`.
   */
  #announce(offers: readonly Record<string, JsonValue>[], nick?: string, proof?: string): void {
    if (nick === undefined) {
      for (const offer of offers) this.#pubmsg(`!${this.#offerLine(offer)}`);
      return;
    }
    offers.forEach((offer, index) => {
      const [cmd = '', ...rest] = this.#offerLine(offer).split(' ');
      let body = rest.join(' ');
      if (proof !== undefined && index === offers.length - 1) body += `!tbond ${proof}`;
      this.#privmsg(nick, cmd, body);
    });
  }

  /** jmdaemon `transfer_commitment`: `!hp2 <commitment>` to one random maker of the orderbook. */
  #transferCommitment(commitment: string): void {
    const makers = [...new Set(this.#core?.orderbook().map((o) => o.counterparty) ?? [])];
    const chosen = makers[Math.floor(this.#random() * makers.length)];
    if (chosen !== undefined) this.#privmsg(chosen, 'hp2', commitment);
  }

  #sendError(nick: string, message: string): void {
    this.#privmsg(nick, 'error', message);
  }

  // ---- responders ------------------------------------------------------------------------

  /** The blacklist at `path`: the one already loaded, or read now (once per path). */
  async #loadBlacklist(path: string): Promise<CommitmentBlacklist> {
    const loaded = this.#init?.blacklist;
    if (loaded?.path === path) return loaded;
    try {
      return await CommitmentBlacklist.load(path, {
        onWriteError: (err) => {
          this.#logger.error({ reason: reason(err) }, 'cannot record the commitment');
        },
      });
    } catch (err) {
      throw new AmpCommandError(ERROR_BLACKLIST_UNREADABLE, `JMInit: ${reason(err)}`);
    }
  }

  #requireInit(command: string): InitData {
    if (this.#init === undefined)
      throw new AmpCommandError(ERROR_BAD_STATE, `${command} before JMInit`);
    return this.#init;
  }

  #responders(): AmpResponders {
    const accepted: JmResponse = { accepted: true };
    const refused: JmResponse = { accepted: false };
    return {
      JMInit: async (args) => {
        let config: OnionChannelConfig;
        try {
          config = parseChanConfigs(args.chan_configs);
        } catch (err) {
          if (err instanceof ChanConfigError)
            throw new AmpCommandError(ERROR_UNSUPPORTED_CHANNEL, err.problems.join('; '));
          throw err;
        }
        // Twisted's callLater asserts a delay of 0 or more (at JMFill); refused here, up front.
        if (args.maker_timeout_sec < 0)
          throw new AmpCommandError(
            AMP_UNKNOWN,
            `JMInit: maker_timeout_sec must be 0 or more, got ${args.maker_timeout_sec}`,
          );
        if (args.blacklist_location === '')
          throw new AmpCommandError(ERROR_BAD_STATE, 'JMInit: blacklist_location is empty');
        this.#init = {
          minmakers: args.minmakers,
          makerTimeoutSec: Math.min(args.maker_timeout_sec, MAX_MAKER_TIMEOUT_SEC),
          dustThreshold: args.dust_threshold,
          network: args.network,
          blacklist: await this.#loadBlacklist(args.blacklist_location),
          config,
        };
        const key = pyJsonDumpsValue(args.chan_configs);
        if (key === this.#chanConfigsKey) {
          this.#restartRequired = false;
        } else {
          this.#stopCore();
          this.#chanConfigsKey = key;
          this.#restartRequired = true;
        }
        this.#notify(
          this.#amp.callRemote('JMInitProto', {
            nick_hash_length: NICK_HASH_LENGTH,
            nick_max_encoded: NICK_MAX_ENCODED,
            joinmarket_nick_header: JOINMARKET_NICK_HEADER,
            joinmarket_version: JM_VERSION,
          }),
          'JMInitProto',
        );
        return accepted;
      },

      JMStartMC: ({ nick }) => {
        const init = this.#requireInit('JMStartMC');
        this.#state = 0;
        if (this.#restartRequired || this.#core === undefined || this.#core.nick !== nick) {
          this.#stopCore();
          let core: MessageChannelCore;
          try {
            core = this.#options.createCore({
              nick,
              config: init.config,
              network: init.network,
              signer: this.#sign,
              verifier: this.#verify,
            });
          } catch (err) {
            throw new AmpCommandError(ERROR_UNSUPPORTED_CHANNEL, `JMStartMC: ${reason(err)}`);
          }
          this.#attachCore(core);
          this.#restartRequired = false;
          core.start().catch((err: unknown) => {
            this.#logger.error({ reason: reason(err) }, 'message channel did not start');
          });
        } else if (this.#core.isUp) {
          // jmdaemon simulates on_welcome when the channel is already up.
          this.#notify(this.#amp.callRemote('JMUp', {}), 'JMUp');
        }
        return accepted;
      },

      JMSetup: ({ role, initdata, use_fidelity_bond }) => {
        if (this.#state !== 0 || this.#core === undefined)
          throw new AmpCommandError(ERROR_BAD_STATE, 'JMSetup before JMStartMC, or twice');
        if (role !== 'MAKER' && role !== 'TAKER')
          throw new AmpCommandError(
            ERROR_BAD_STATE,
            `JMSetup: role "${role}" is not MAKER or TAKER`,
          );
        this.#role = role;
        this.#makerOrders.clear();
        this.#endRound();
        this.#notify(this.#amp.callRemote('JMSetupDone', {}), 'JMSetupDone');
        if (role === 'TAKER') {
          this.#pubmsg('!orderbook');
        } else {
          this.#offerlist = records(initdata);
          this.#useFidelityBond = use_fidelity_bond;
          this.#announce(this.#offerlist);
        }
        this.#state = 1;
        return accepted;
      },

      JMMsgSignature: ({ nick, cmd, msg_to_return, hostid }) => {
        const index = this.#pendingSignatures.findIndex(
          (p) =>
            p.nick === nick &&
            p.cmd === cmd &&
            p.hostid === hostid &&
            msg_to_return.startsWith(`${p.msg} `),
        );
        const pending = this.#pendingSignatures[index];
        if (pending === undefined) {
          this.#logger.warn({ to: nick, cmd }, 'JMMsgSignature for no privmsg we asked to sign');
          return refused;
        }
        this.#pendingSignatures.splice(index, 1);
        clearTimeout(pending.timer);
        pending.resolve(msg_to_return);
        return accepted;
      },

      JMMsgSignatureVerify: ({ verif_result, nick, fullmsg, hostid }) => {
        const index = this.#pendingVerifies.findIndex(
          (p) => p.nick === nick && p.fullmsg === fullmsg && p.hostid === hostid,
        );
        const pending = this.#pendingVerifies[index];
        if (pending === undefined) {
          this.#logger.warn({ from: nick }, 'JMMsgSignatureVerify for no privmsg we asked about');
          return refused;
        }
        this.#pendingVerifies.splice(index, 1);
        clearTimeout(pending.timer);
        if (!verif_result) this.#logger.info({ from: nick }, 'privmsg signature refused by client');
        pending.resolve(verif_result);
        return accepted;
      },

      JMShutdown: () => {
        this.#stopCore();
        this.#chanConfigsKey = undefined;
        this.#state = 0;
        return accepted;
      },

      JMRequestOffers: () => {
        const init = this.#requireInit('JMRequestOffers');
        const core = this.#core;
        const rows = (core?.orderbook() ?? []).map((o) => ({
          counterparty: o.counterparty,
          oid: o.oid,
          ordertype: o.ordertype,
          minsize: Math.max(o.minsize, init.dustThreshold),
          maxsize: o.maxsize,
          txfee: o.txfee,
          cjfee: o.cjfee,
        }));
        const bonds = (core?.fidelityBonds() ?? []).map((b) => ({
          counterparty: b.counterparty,
          takernick: b.takernick,
          proof: b.proof,
        }));
        this.#logger.info({ offers: rows.length, bonds: bonds.length }, 'sending orderbook');
        this.#notify(
          this.#amp.callRemote('JMOffers', {
            orderbook: pyJsonDumpsValue(rows),
            fidelitybonds: pyJsonDumpsValue(bonds),
          }),
          'JMOffers',
        );
        return accepted;
      },

      JMFill: ({ amount, commitment, revelation, filled_offers }) => {
        const init = this.#requireInit('JMFill');
        const offers = asRecord(filled_offers);
        if (this.#state !== 1 || amount < 0 || offers === undefined) return refused;
        const makers = new Map<string, Record<string, JsonValue>>();
        for (const [nick, offer] of Object.entries(offers)) {
          const record = asRecord(offer);
          if (record === undefined || makers.size >= MAX_ACTIVE_COUNTERPARTIES) return refused;
          makers.set(nick, record);
        }
        this.#endRound();
        const round: TakerRound = {
          amount,
          commitment,
          revelation,
          makers,
          makerKeys: new Map(),
          ioauth: new Map(),
          ioauthBytes: 2,
          timer: undefined,
        };
        this.#round = round;
        for (const [nick, offer] of makers) {
          this.#privmsg(nick, 'fill', `${pyStr(offer.oid)} ${amount} ${commitment}`);
        }
        round.timer = setTimeout(() => {
          this.#completeStage1();
        }, init.makerTimeoutSec * 1000);
        round.timer.unref();
        this.#state = 2;
        return accepted;
      },

      JMMakeTx: ({ nick_list, tx }) => {
        if (this.#state !== 4) {
          this.#logger.info('JMMakeTx in the wrong state; refused');
          return refused;
        }
        const unreachable = nick_list.filter((nick) => this.#core?.canReach(nick) !== true);
        if (unreachable.length > 0) {
          // jmdaemon sends to none when one maker is not reachable.
          this.#logger.info({ unreachable }, 'cannot send the transaction to every maker');
          return accepted;
        }
        const b64 = Buffer.from(tx).toString('base64');
        for (const nick of nick_list) this.#privmsg(nick, 'tx', b64);
        return accepted;
      },

      JMPushTx: ({ nick, tx }) => {
        this.#privmsg(nick, 'push', Buffer.from(tx).toString('base64'));
        return accepted;
      },

      JMAnnounceOffers: ({ to_announce, to_cancel, offerlist }) => {
        if (this.#role !== 'MAKER') return refused;
        this.#offerlist = records(offerlist);
        if (Array.isArray(to_cancel) && to_cancel.length > 0)
          this.#pubmsg(to_cancel.map((oid) => `!cancel ${pyStr(oid)}`).join(''));
        if (Array.isArray(to_announce) && to_announce.length > 0)
          this.#announce(records(to_announce));
        return accepted;
      },

      JMFidelityBondProof: ({ nick, proof }) => {
        this.#announce(this.#offerlist, nick, proof);
        return accepted;
      },

      JMIOAuth: ({ nick, utxolist, pubkey, cjaddr, changeaddr, pubkeysig }) => {
        const order = this.#makerOrders.get(nick);
        if (this.#role !== 'MAKER' || order === undefined) return refused;
        order.cjaddr = cjaddr;
        order.changeaddr = changeaddr;
        order.utxos = utxolist;
        const utxos = Array.isArray(utxolist)
          ? utxolist.map((u) => pyStr(u))
          : Object.keys(asRecord(utxolist) ?? {});
        this.#privmsg(
          nick,
          'ioauth',
          `${utxos.join(',')} ${[pubkey, cjaddr, changeaddr, pubkeysig].join(' ')}`,
        );
        // A used commitment is broadcast (through another maker) and recorded only now, so that
        // makers of one CoinJoin do not blacklist it for each other (jmdaemon on_JM_IOAUTH).
        this.#transferCommitment(order.commit);
        this.#recordCommitment(order.commit);
        return accepted;
      },

      JMTXSigs: ({ nick, sigs }) => {
        for (const sig of sigs) this.#privmsg(nick, 'sig', sig);
        return accepted;
      },
    };
  }

  // ---- the core's events -----------------------------------------------------------------

  #attachCore(core: MessageChannelCore): void {
    this.#core = core;
    this.#welcomed = false;
    this.#coreUnsubscribe = [
      core.on('up', () => {
        if (this.#core !== core || this.#welcomed) return;
        this.#welcomed = true;
        this.#notify(this.#amp.callRemote('JMUp', {}), 'JMUp');
      }),
      core.on('privmsg', (event) => {
        if (this.#core === core) this.#handlePrivmsg(event);
      }),
      core.on('pubmsg', (event) => {
        if (this.#core === core) this.#handlePubmsg(event);
      }),
      core.on('nickLeave', ({ nick }) => {
        this.#lastOrderbookReply.delete(nick);
      }),
    ];
  }

  #stopCore(): void {
    const core = this.#core;
    if (core === undefined) return;
    for (const off of this.#coreUnsubscribe) off();
    this.#coreUnsubscribe = [];
    this.#core = undefined;
    this.#endRound();
    this.#makerOrders.clear();
    core.stop().catch((err: unknown) => {
      this.#logger.warn({ reason: reason(err) }, 'message channel did not stop cleanly');
    });
  }

  #shutdown(why: string): void {
    this.#logger.info({ reason: why }, 'jmclient session ends');
    this.#stopCore();
    for (const p of this.#pendingSignatures) {
      clearTimeout(p.timer);
      p.reject(new OnionmcError('ERR_CLOSED', 'jmclient disconnected'));
    }
    for (const p of this.#pendingVerifies) {
      clearTimeout(p.timer);
      p.resolve(false);
    }
    this.#pendingSignatures = [];
    this.#pendingVerifies = [];
  }

  #handlePubmsg({ from, message }: CorePubmsgEvent): void {
    if (!message.startsWith('!')) return;
    const commands = message.slice(1).split('!');
    // A pubmsg asking for the orderbook more than once is ignored (jmdaemon, DoS #298).
    if (commands.filter((c) => c === 'orderbook').length > 1) return;
    // One `!hp2` per pubmsg is recorded: a maker broadcasts one commitment at a time, and a
    // pubmsg of thousands must not cost thousands of blacklist updates.
    let hp2Seen = false;
    for (const command of commands) {
      const [cmd, arg] = command.split(' ');
      if (cmd === 'orderbook' && this.#role === 'MAKER') this.#onOrderbookRequested(from);
      else if (cmd === 'hp2' && this.#role === 'MAKER' && arg !== undefined && !hp2Seen) {
        hp2Seen = true;
        // Another maker saw this commitment used: record it (jmdaemon on_commitment_seen).
        this.#recordCommitment(arg);
      }
    }
  }

  /** Adds a used commitment to the blacklist; one dropped (too many appends waiting) is logged. */
  #recordCommitment(commitment: string): void {
    const blacklist = this.#init?.blacklist;
    if (blacklist === undefined) return;
    const before = blacklist.dropped;
    blacklist.check(commitment, true);
    if (blacklist.dropped > before)
      this.#logger.warn({ dropped: blacklist.dropped }, 'blacklist busy; commitment not recorded');
  }

  #onOrderbookRequested(nick: string): void {
    if (this.#offerlist.length === 0) return;
    const now = this.#now();
    const last = this.#lastOrderbookReply.get(nick);
    if (last !== undefined && now - last < ORDERBOOK_REPLY_INTERVAL_MS) return;
    if (this.#lastOrderbookReply.size >= MAX_ACTIVE_COUNTERPARTIES * 10)
      this.#lastOrderbookReply.clear();
    this.#lastOrderbookReply.set(nick, now);
    if (this.#useFidelityBond) {
      this.#notify(
        this.#amp.callRemote('JMFidelityBondProofRequest', {
          takernick: nick,
          makernick: this.#core?.nick ?? '',
        }),
        'JMFidelityBondProofRequest',
      );
    } else {
      this.#announce(this.#offerlist, nick);
    }
  }

  #handlePrivmsg(event: CorePrivmsgEvent): void {
    const { from, cmd, body } = event;
    if (cmd === 'error') {
      this.#logger.info({ from }, 'counterparty sent !error');
      return;
    }
    if (this.#role === 'TAKER') {
      if (cmd === 'pubkey') this.#onPubkey(from, event.peerKeyHex);
      else if (cmd === 'ioauth') this.#onIoauth(from, body);
      else if (cmd === 'sig') {
        const sig = body.split(' ')[0] ?? '';
        this.#notify(this.#amp.callRemote('JMSigReceived', { nick: from, sig }), 'JMSigReceived');
      }
      return;
    }
    switch (cmd) {
      case 'fill':
        this.#onFill(from, body, event.ownKeyHex);
        return;
      case 'auth':
        this.#onAuth(from, body.split(' ')[0] ?? '');
        return;
      case 'tx':
      case 'push': {
        const tx = Buffer.from(body.split(' ')[0] ?? '', 'base64');
        if (cmd === 'push') {
          // jmdaemon relays a pushed transaction to the client unquestioned.
          this.#notify(this.#amp.callRemote('JMTXBroadcast', { tx }), 'JMTXBroadcast');
          return;
        }
        const order = this.#makerOrders.get(from);
        if (order === undefined) return;
        const offer: Record<string, JsonValue> = {
          offer: order.offer,
          amount: order.amount,
          commit: order.commit,
        };
        if (order.cjaddr !== undefined) offer.cjaddr = order.cjaddr;
        if (order.changeaddr !== undefined) offer.changeaddr = order.changeaddr;
        if (order.utxos !== undefined) offer.utxos = order.utxos;
        this.#notify(
          this.#amp.callRemote('JMTXReceived', { nick: from, tx, offer }),
          'JMTXReceived',
        );
        return;
      }
      case 'hp2': {
        // Another maker asks us to broadcast a commitment (jmdaemon on_commitment_transferred).
        const commitment = canonicalizeCommitment(body.split(' ')[0] ?? '');
        if (commitment !== undefined) this.#pubmsg(`!hp2 ${commitment}`);
        return;
      }
      default:
        return;
    }
  }

  /** jmdaemon `on_order_fill`: checks the commitment and the offer, then answers `!pubkey`. */
  #onFill(nick: string, body: string, ownKeyHex: string | undefined): void {
    const init = this.#init;
    if (init === undefined) return;
    const [oidText = '', amountText = '', commit] = body.split(' ');
    const oid = Number(oidText);
    const amount = Number(amountText);
    for (const [text, value] of [
      [oidText, oid],
      [amountText, amount],
    ] as const) {
      if (!/^[+-]?[0-9]+$/.test(text) || !Number.isSafeInteger(value)) {
        this.#sendError(nick, `invalid literal for int() with base 10: '${text}'`);
        return;
      }
    }
    if (commit === undefined || !COMMITMENT_PREFIXES.includes(commit.slice(0, 1))) {
      this.#sendError(nick, `Unsupported commitment type: ${commit?.slice(0, 1) ?? 'None'}`);
      return;
    }
    const scommit = commit.slice(1);
    const verdict = init.blacklist.check(scommit);
    if (verdict === 'invalid_format') return;
    if (verdict === 'blacklisted') {
      this.#logger.info({ from: nick }, 'taker commitment is blacklisted; refused');
      this.#sendError(nick, `Commitment is blacklisted: ${scommit}`);
      this.#transferCommitment(scommit);
      return;
    }
    const offer = this.#offerlist.find((o) => o.oid === oid);
    if (offer === undefined) {
      this.#sendError(nick, 'oid not found');
      return;
    }
    const minsize = typeof offer.minsize === 'number' ? offer.minsize : 0;
    const maxsize = typeof offer.maxsize === 'number' ? offer.maxsize : 0;
    if (amount < minsize || amount > maxsize) {
      this.#sendError(nick, 'amount out of range');
      return;
    }
    if (ownKeyHex === undefined) {
      this.#logger.warn({ from: nick }, 'core gave no session key for !fill');
      return;
    }
    if (!this.#makerOrders.has(nick) && this.#makerOrders.size >= MAX_ACTIVE_COUNTERPARTIES) {
      const oldest = this.#makerOrders.keys().next().value;
      if (oldest !== undefined) this.#makerOrders.delete(oldest);
    }
    this.#makerOrders.delete(nick);
    this.#makerOrders.set(nick, { offer, amount, commit: scommit, kphex: ownKeyHex });
    this.#privmsg(nick, 'pubkey', '');
  }

  /** jmdaemon `on_seen_auth`: the client checks the PoDLE revelation and signs our key. */
  #onAuth(nick: string, revelation: string): void {
    const order = this.#makerOrders.get(nick);
    if (order === undefined) return;
    // JMAuthReceived carries it as JsonEncodable: one that does not fit an AMP value is invalid.
    const bytes = jsonBytes(revelation);
    if (bytes > AMP_MAX_VALUE_BYTES) {
      this.#drop('oversized-auth', nick, bytes);
      return;
    }
    this.#notify(
      this.#amp.callRemote('JMAuthReceived', {
        nick,
        offer: order.offer,
        commitment: order.commit,
        revelation,
        amount: order.amount,
        kphex: order.kphex,
      }),
      'JMAuthReceived',
    );
  }

  /** jmdaemon `on_pubkey` (taker): answer `!auth` with the PoDLE revelation. */
  #onPubkey(nick: string, makerKeyHex: string | undefined): void {
    const round = this.#round;
    if (round === undefined || !round.makers.has(nick) || makerKeyHex === undefined) return;
    round.makerKeys.set(nick, makerKeyHex);
    this.#privmsg(nick, 'auth', round.revelation);
  }

  /** jmdaemon `on_ioauth` (taker): collect; answer the client when every maker has. */
  #onIoauth(nick: string, body: string): void {
    const round = this.#round;
    if (round === undefined || !round.makers.has(nick)) return;
    const [utxos, authPub, cjAddr, changeAddr, btcSig] = body.split(' ');
    if (
      utxos === undefined ||
      authPub === undefined ||
      cjAddr === undefined ||
      changeAddr === undefined ||
      btcSig === undefined
    )
      return;
    const entry: JsonValue = [
      utxos.split(','),
      authPub,
      cjAddr,
      changeAddr,
      btcSig,
      round.makerKeys.get(nick) ?? '',
    ];
    // `, "nick": entry` in ioauth_data; a maker whose data would take it past what an AMP value
    // holds is dropped as one that did not answer, so the fill goes on with the others (or fails
    // below minmakers at the timeout, naming it) instead of JMFillResponse failing to encode.
    const previous = round.ioauth.get(nick);
    const size = (n: string, e: JsonValue): number => jsonBytes(n) + 2 + jsonBytes(e);
    const without =
      previous === undefined
        ? round.ioauthBytes
        : round.ioauthBytes - size(nick, previous) - (round.ioauth.size > 1 ? 2 : 0);
    const count = round.ioauth.size - (previous === undefined ? 0 : 1);
    const bytes = without + size(nick, entry) + (count > 0 ? 2 : 0);
    if (bytes > AMP_MAX_VALUE_BYTES) {
      this.#drop('oversized-ioauth', nick, bytes);
      return;
    }
    round.ioauth.set(nick, entry);
    round.ioauthBytes = bytes;
    if (round.ioauth.size === round.makers.size) this.#respondToIoauths(true);
  }

  /** jmdaemon `completeStage1`: at the maker timeout, enough makers or failure. */
  #completeStage1(): void {
    const round = this.#round;
    if (round === undefined) return;
    this.#respondToIoauths(round.ioauth.size >= (this.#init?.minmakers ?? 1));
  }

  #respondToIoauths(success: boolean): void {
    const round = this.#round;
    if (this.#state !== 2 || round === undefined) return;
    let ioauthData: JsonValue = success
      ? Object.fromEntries(round.ioauth)
      : [...round.makers.keys()].filter((nick) => !round.ioauth.has(nick));
    // #onIoauth keeps the success data within an AMP value; the non-responders' nicks came from
    // the client's filled_offers but may grow when re-escaped: what does not fit is left out.
    if (jsonBytes(ioauthData) > AMP_MAX_VALUE_BYTES) {
      this.#logger.warn({ success }, 'ioauth_data does not fit JMFillResponse; sending none');
      ioauthData = success ? {} : [];
    }
    // The state changes once the request is written (callRemote writes it before returning).
    this.#state = 3;
    clearTimeout(round.timer);
    this.#amp.callRemote('JMFillResponse', { success, ioauth_data: ioauthData }).then(
      (response) => {
        if (success && response.accepted && this.#round === round) this.#state = 4;
        else if (success) this.#logger.info("taker refused the makers' utxos");
      },
      (err: unknown) => {
        this.#logger.warn({ reason: reason(err) }, 'JMFillResponse failed');
      },
    );
  }

  #endRound(): void {
    if (this.#round !== undefined) clearTimeout(this.#round.timer);
    this.#round = undefined;
  }
}
