/**
 * The 26 commands of JoinMarket's client-daemon link (jmbase/commands.py, joinmarket-clientserver
 * 0.9.12; docs/joinmarketd.md) and the request/answer/error envelopes of Twisted AMP. Pure.
 *
 * Every command answers `accepted` (Boolean). A request box carries `_command` and `_ask` (a
 * per-sender counter, written in lowercase hex by Twisted: `1` ... `9`, `a`, `b`); the answer
 * carries `_answer` with that tag, an error `_error`, `_error_code`, `_error_description`.
 * SNICKER and BIP78 commands (served on other ports by joinmarketd.py) are out of scope.
 */
import type { AmpBox } from './box.js';
import {
  readArgument,
  writeArgument,
  type AmpArgumentType,
  type AmpArgumentValues,
} from './arguments.js';
import { AmpError } from './errors.js';

/** Who sends a command. */
export type CommandSender = 'client' | 'daemon';

/** One command: sender, the role it belongs to, and its arguments in jmbase's order. */
export interface JmCommandSpec {
  readonly sender: CommandSender;
  readonly role: 'both' | 'maker' | 'taker';
  readonly arguments: Readonly<Record<string, AmpArgumentType>>;
}

/** The command table, in jmbase/commands.py order (26 commands; SNICKER/BIP78 left out). */
export const JM_COMMANDS = {
  // client -> daemon, both roles
  JMInit: {
    sender: 'client',
    role: 'both',
    arguments: {
      bcsource: 'Unicode',
      network: 'Unicode',
      chan_configs: 'JsonEncodable',
      minmakers: 'Integer',
      maker_timeout_sec: 'Integer',
      dust_threshold: 'Integer',
      blacklist_location: 'Unicode',
    },
  },
  JMStartMC: { sender: 'client', role: 'both', arguments: { nick: 'Unicode' } },
  JMSetup: {
    sender: 'client',
    role: 'both',
    arguments: { role: 'Unicode', initdata: 'JsonEncodable', use_fidelity_bond: 'Boolean' },
  },
  JMMsgSignature: {
    sender: 'client',
    role: 'both',
    arguments: { nick: 'Unicode', cmd: 'Unicode', msg_to_return: 'Unicode', hostid: 'Unicode' },
  },
  JMMsgSignatureVerify: {
    sender: 'client',
    role: 'both',
    arguments: { verif_result: 'Boolean', nick: 'Unicode', fullmsg: 'Unicode', hostid: 'Unicode' },
  },
  JMShutdown: { sender: 'client', role: 'both', arguments: {} },
  // client -> daemon, taker
  JMRequestOffers: { sender: 'client', role: 'taker', arguments: {} },
  JMFill: {
    sender: 'client',
    role: 'taker',
    arguments: {
      amount: 'Integer',
      commitment: 'Unicode',
      revelation: 'Unicode',
      filled_offers: 'JsonEncodable',
    },
  },
  JMMakeTx: {
    sender: 'client',
    role: 'taker',
    arguments: { nick_list: 'ListOfUnicode', tx: 'String' },
  },
  JMPushTx: { sender: 'client', role: 'taker', arguments: { nick: 'Unicode', tx: 'String' } },
  // client -> daemon, maker
  JMAnnounceOffers: {
    sender: 'client',
    role: 'maker',
    arguments: {
      to_announce: 'JsonEncodable',
      to_cancel: 'JsonEncodable',
      offerlist: 'JsonEncodable',
    },
  },
  JMFidelityBondProof: {
    sender: 'client',
    role: 'maker',
    arguments: { nick: 'Unicode', proof: 'Unicode' },
  },
  JMIOAuth: {
    sender: 'client',
    role: 'maker',
    arguments: {
      nick: 'Unicode',
      utxolist: 'JsonEncodable',
      pubkey: 'Unicode',
      cjaddr: 'Unicode',
      changeaddr: 'Unicode',
      pubkeysig: 'Unicode',
    },
  },
  JMTXSigs: {
    sender: 'client',
    role: 'maker',
    arguments: { nick: 'Unicode', sigs: 'ListOfUnicode' },
  },
  // daemon -> client
  JMInitProto: {
    sender: 'daemon',
    role: 'both',
    arguments: {
      nick_hash_length: 'Integer',
      nick_max_encoded: 'Integer',
      joinmarket_nick_header: 'Unicode',
      joinmarket_version: 'Integer',
    },
  },
  JMUp: { sender: 'daemon', role: 'both', arguments: {} },
  JMSetupDone: { sender: 'daemon', role: 'both', arguments: {} },
  JMRequestMsgSig: {
    sender: 'daemon',
    role: 'both',
    arguments: {
      nick: 'Unicode',
      cmd: 'Unicode',
      msg: 'Unicode',
      msg_to_be_signed: 'Unicode',
      hostid: 'Unicode',
    },
  },
  JMRequestMsgSigVerify: {
    sender: 'daemon',
    role: 'both',
    arguments: {
      msg: 'Unicode',
      fullmsg: 'Unicode',
      sig: 'Unicode',
      pubkey: 'Unicode',
      nick: 'Unicode',
      hashlen: 'Integer',
      max_encoded: 'Integer',
      hostid: 'Unicode',
    },
  },
  // daemon -> client, taker
  JMOffers: {
    sender: 'daemon',
    role: 'taker',
    arguments: { orderbook: 'BigUnicode', fidelitybonds: 'BigUnicode' },
  },
  JMFillResponse: {
    sender: 'daemon',
    role: 'taker',
    arguments: { success: 'Boolean', ioauth_data: 'JsonEncodable' },
  },
  JMSigReceived: {
    sender: 'daemon',
    role: 'taker',
    arguments: { nick: 'Unicode', sig: 'Unicode' },
  },
  // daemon -> client, maker
  JMFidelityBondProofRequest: {
    sender: 'daemon',
    role: 'maker',
    arguments: { takernick: 'Unicode', makernick: 'Unicode' },
  },
  JMAuthReceived: {
    sender: 'daemon',
    role: 'maker',
    arguments: {
      nick: 'Unicode',
      offer: 'JsonEncodable',
      commitment: 'Unicode',
      revelation: 'JsonEncodable',
      amount: 'Integer',
      kphex: 'Unicode',
    },
  },
  JMTXReceived: {
    sender: 'daemon',
    role: 'maker',
    arguments: { nick: 'Unicode', tx: 'String', offer: 'JsonEncodable' },
  },
  JMTXBroadcast: { sender: 'daemon', role: 'maker', arguments: { tx: 'String' } },
} as const satisfies Record<string, JmCommandSpec>;

/** Name of one of the 26 commands. */
export type JmCommandName = keyof typeof JM_COMMANDS;

/** The typed arguments of command `N`. */
export type JmCommandArgs<N extends JmCommandName> = {
  -readonly [
    K in keyof (typeof JM_COMMANDS)[N]['arguments']
  ]: AmpArgumentValues[(typeof JM_COMMANDS)[N]['arguments'][K] & AmpArgumentType];
};

/** The response of every command (jmbase `JMCommand.response`). */
export interface JmResponse {
  accepted: boolean;
}

/** Commands the client sends (the daemon answers them). */
export type ClientCommandName = {
  [N in JmCommandName]: (typeof JM_COMMANDS)[N]['sender'] extends 'client' ? N : never;
}[JmCommandName];

/** Commands the daemon sends (the client answers them). */
export type DaemonCommandName = Exclude<JmCommandName, ClientCommandName>;

/** Twisted's envelope keys. */
export const AMP_KEYS = {
  command: '_command',
  ask: '_ask',
  answer: '_answer',
  error: '_error',
  errorCode: '_error_code',
  errorDescription: '_error_description',
} as const;

/** `_error_code` of a command the receiver has no responder for (Twisted `UNHANDLED`). */
export const AMP_UNHANDLED = 'UNHANDLED';
/** `_error_code` of any other failure (Twisted `UNKNOWN`). */
export const AMP_UNKNOWN = 'UNKNOWN';

/** True when `name` is one of the 26 commands. */
export function isJmCommand(name: string): name is JmCommandName {
  return Object.prototype.hasOwnProperty.call(JM_COMMANDS, name);
}

/** A tag as Twisted writes its `_ask` counter: lowercase hex. */
export function askTag(counter: number): string {
  return counter.toString(16);
}

/**
 * Builds the request box of command `name` with tag `ask`.
 * @throws AmpError `ERR_AMP_TOO_LONG` for an over-long value; TypeError for a wrong JS type.
 */
export function encodeRequest<N extends JmCommandName>(
  name: N,
  args: JmCommandArgs<N>,
  ask: string,
): AmpBox {
  const box: AmpBox = new Map();
  box.set(AMP_KEYS.command, Buffer.from(name, 'ascii'));
  box.set(AMP_KEYS.ask, Buffer.from(ask, 'ascii'));
  const spec: JmCommandSpec = JM_COMMANDS[name];
  for (const [argName, type] of Object.entries(spec.arguments)) {
    const value = (args as Record<string, unknown>)[argName];
    if (value === undefined) throw new TypeError(`${name}: argument "${argName}" missing`);
    writeArgument(box, argName, type, value as AmpArgumentValues[typeof type]);
  }
  return box;
}

/**
 * Reads the arguments of command `name` from its request box. Keys that are not arguments are
 * ignored, as Twisted does.
 * @throws AmpError `ERR_AMP_BAD_ARGUMENT` / `ERR_AMP_TRUNCATED` for a missing or malformed one.
 */
export function decodeArguments<N extends JmCommandName>(name: N, box: AmpBox): JmCommandArgs<N> {
  const spec: JmCommandSpec = JM_COMMANDS[name];
  const out: Record<string, unknown> = {};
  for (const [argName, type] of Object.entries(spec.arguments)) {
    out[argName] = readArgument(box, argName, type);
  }
  return out as JmCommandArgs<N>;
}

/** The answer box `{_answer: tag, accepted: True|False}`. */
export function encodeAnswer(tag: string, response: JmResponse): AmpBox {
  const box: AmpBox = new Map();
  box.set(AMP_KEYS.answer, Buffer.from(tag, 'latin1'));
  writeArgument(box, 'accepted', 'Boolean', response.accepted);
  return box;
}

/** The error box `{_error: tag, _error_code, _error_description}`. */
export function encodeErrorBox(tag: string, code: string, description: string): AmpBox {
  const box: AmpBox = new Map();
  box.set(AMP_KEYS.error, Buffer.from(tag, 'latin1'));
  box.set(AMP_KEYS.errorCode, Buffer.from(code, 'utf8'));
  box.set(AMP_KEYS.errorDescription, Buffer.from(description, 'utf8'));
  return box;
}

/** A box as it arrives: a request, an answer to one of ours, or an error answer. */
export type ClassifiedBox =
  | { kind: 'request'; command: string; ask: string | undefined; box: AmpBox }
  | { kind: 'answer'; tag: string; box: AmpBox }
  | { kind: 'error'; tag: string; code: string; description: string };

/**
 * Tells a request, an answer and an error apart.
 * @throws AmpError `ERR_AMP_BAD_ENVELOPE` for a box with none of `_command`, `_answer`, `_error`.
 */
export function classifyBox(box: AmpBox): ClassifiedBox {
  const command = box.get(AMP_KEYS.command);
  if (command !== undefined) {
    const ask = box.get(AMP_KEYS.ask);
    return {
      kind: 'request',
      command: command.toString('latin1'),
      ask: ask?.toString('latin1'),
      box,
    };
  }
  const answer = box.get(AMP_KEYS.answer);
  if (answer !== undefined) return { kind: 'answer', tag: answer.toString('latin1'), box };
  const error = box.get(AMP_KEYS.error);
  if (error !== undefined) {
    return {
      kind: 'error',
      tag: error.toString('latin1'),
      code: box.get(AMP_KEYS.errorCode)?.toString('utf8') ?? AMP_UNKNOWN,
      description: box.get(AMP_KEYS.errorDescription)?.toString('utf8') ?? '',
    };
  }
  throw new AmpError(
    'ERR_AMP_BAD_ENVELOPE',
    'AMP box is neither a request, an answer nor an error',
  );
}

/**
 * Reads `accepted` from an answer box.
 * @throws AmpError `ERR_AMP_BAD_ARGUMENT` when missing or not True/False.
 */
export function decodeResponse(box: AmpBox): JmResponse {
  return { accepted: readArgument(box, 'accepted', 'Boolean') };
}

/**
 * The error box Twisted sends for a command it has no responder for:
 * `_error_code` `UNHANDLED`, description `Unhandled Command: b'Name'`.
 */
export function unhandledCommandBox(tag: string, command: string): AmpBox {
  return encodeErrorBox(tag, AMP_UNHANDLED, `Unhandled Command: b'${command}'`);
}
