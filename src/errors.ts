/**
 * Error classes of onionmc. Every error carries a stable `code`: code and tests match on the code,
 * never on the message text, which is for people and may change.
 */

/** Stable error codes. One per failure an operator, a peer or a test may need to tell apart. */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_PROTOCOL'
  | 'ERR_LINE_TOO_LONG'
  | 'ERR_HANDSHAKE'
  | 'ERR_SIGNATURE'
  | 'ERR_CRYPTO'
  | 'ERR_TOR_CONTROL'
  | 'ERR_TOR_CONTROL_UNREACHABLE'
  | 'ERR_TOR_AUTH'
  | 'ERR_TOR_COMMAND'
  | 'ERR_TOR_TIMEOUT'
  | SocksErrorCode
  | 'ERR_DIAL'
  | 'ERR_DIAL_REFUSED'
  | 'ERR_DIAL_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_LISTEN'
  | 'ERR_NOT_ROUTABLE'
  | 'ERR_NOT_DELIVERED'
  | 'ERR_BUSY'
  | 'ERR_CLOSED'
  | 'ERR_SLOW_READER'
  | 'ERR_TIMEOUT'
  | 'ERR_API'
  | 'ERR_CLI';

/**
 * Codes of a failed SOCKS5 dial. A proxy's reply code maps to one code each (RFC 1928 §6 for
 * 0x01-0x08, Tor's extended errors 0xF0-0xF7); the others name the step that failed.
 */
export type SocksErrorCode =
  | 'ERR_SOCKS_GENERAL_FAILURE' // reply 0x01
  | 'ERR_SOCKS_NOT_ALLOWED' // 0x02
  | 'ERR_SOCKS_NETWORK_UNREACHABLE' // 0x03
  | 'ERR_SOCKS_HOST_UNREACHABLE' // 0x04
  | 'ERR_SOCKS_CONNECTION_REFUSED' // 0x05
  | 'ERR_SOCKS_TTL_EXPIRED' // 0x06 (tor: SocksTimeout expired)
  | 'ERR_SOCKS_COMMAND_NOT_SUPPORTED' // 0x07
  | 'ERR_SOCKS_ADDRESS_TYPE_NOT_SUPPORTED' // 0x08
  | 'ERR_SOCKS_ONION_DESCRIPTOR_NOT_FOUND' // 0xF0
  | 'ERR_SOCKS_ONION_DESCRIPTOR_INVALID' // 0xF1
  | 'ERR_SOCKS_ONION_INTRO_FAILED' // 0xF2
  | 'ERR_SOCKS_ONION_RENDEZVOUS_FAILED' // 0xF3
  | 'ERR_SOCKS_ONION_AUTH_MISSING' // 0xF4
  | 'ERR_SOCKS_ONION_AUTH_WRONG' // 0xF5
  | 'ERR_SOCKS_ONION_BAD_ADDRESS' // 0xF6
  | 'ERR_SOCKS_ONION_INTRO_TIMEOUT' // 0xF7
  | 'ERR_SOCKS_UNKNOWN_REPLY' // any other non-zero reply
  | 'ERR_SOCKS_PROXY_UNREACHABLE' // no connection to the proxy itself
  | 'ERR_SOCKS_NOT_SOCKS5' // the proxy does not speak SOCKS5
  | 'ERR_SOCKS_AUTH_REJECTED' // no acceptable method, or username/password refused
  | 'ERR_SOCKS_PROXY_CLOSED' // the proxy hung up during the negotiation
  | 'ERR_SOCKS_PROTOCOL' // the negotiation failed otherwise
  | 'ERR_SOCKS_TIMEOUT' // our deadline passed
  | 'ERR_SOCKS_INVALID_REQUEST' // an option out of range (before any I/O)
  | 'ERR_ABORTED'; // the caller's AbortSignal fired

const SOCKS_REPLY_CODES: ReadonlyMap<number, SocksErrorCode> = new Map([
  [0x01, 'ERR_SOCKS_GENERAL_FAILURE'],
  [0x02, 'ERR_SOCKS_NOT_ALLOWED'],
  [0x03, 'ERR_SOCKS_NETWORK_UNREACHABLE'],
  [0x04, 'ERR_SOCKS_HOST_UNREACHABLE'],
  [0x05, 'ERR_SOCKS_CONNECTION_REFUSED'],
  [0x06, 'ERR_SOCKS_TTL_EXPIRED'],
  [0x07, 'ERR_SOCKS_COMMAND_NOT_SUPPORTED'],
  [0x08, 'ERR_SOCKS_ADDRESS_TYPE_NOT_SUPPORTED'],
  [0xf0, 'ERR_SOCKS_ONION_DESCRIPTOR_NOT_FOUND'],
  [0xf1, 'ERR_SOCKS_ONION_DESCRIPTOR_INVALID'],
  [0xf2, 'ERR_SOCKS_ONION_INTRO_FAILED'],
  [0xf3, 'ERR_SOCKS_ONION_RENDEZVOUS_FAILED'],
  [0xf4, 'ERR_SOCKS_ONION_AUTH_MISSING'],
  [0xf5, 'ERR_SOCKS_ONION_AUTH_WRONG'],
  [0xf6, 'ERR_SOCKS_ONION_BAD_ADDRESS'],
  [0xf7, 'ERR_SOCKS_ONION_INTRO_TIMEOUT'],
]);

/** The stable code of a SOCKS5 reply code (`ERR_SOCKS_UNKNOWN_REPLY` for unassigned ones). */
export function socksCodeForReply(reply: number): SocksErrorCode {
  return SOCKS_REPLY_CODES.get(reply) ?? 'ERR_SOCKS_UNKNOWN_REPLY';
}

/** Base class: a message for people, a stable `code` for code, and the optional `cause`. */
export class OnionmcError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A problem in the configuration file; `problems` lists every problem found, one line each. */
export class ConfigError extends OnionmcError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('ERR_CONFIG', problems.join('\n'));
    this.problems = problems;
  }
}

/**
 * Bytes or text from a peer that break the wire protocol (bad framing, bad JSON, wrong types).
 * The connection that produced it is closed; the daemon goes on.
 */
export class ProtocolError extends OnionmcError {
  constructor(message: string, code: 'ERR_PROTOCOL' | 'ERR_LINE_TOO_LONG' = 'ERR_PROTOCOL') {
    super(code, message);
  }
}

/** A handshake (793/795) that is malformed, rejected, or did not arrive in time. */
export class HandshakeError extends OnionmcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_HANDSHAKE', message, options);
  }
}

/** A failure talking to Tor's control port; `status` is tor's 3-digit reply code when known. */
export class TorControlError extends OnionmcError {
  readonly status: number | undefined;

  constructor(
    code:
      | 'ERR_TOR_CONTROL'
      | 'ERR_TOR_CONTROL_UNREACHABLE'
      | 'ERR_TOR_AUTH'
      | 'ERR_TOR_COMMAND'
      | 'ERR_TOR_TIMEOUT'
      | 'ERR_ABORTED',
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(code, message, options);
    this.status = options?.status;
  }
}

/**
 * A failure dialing through Tor's SOCKS5 port. `reply` is the SOCKS5 reply code when the proxy
 * answered CONNECT; `code` is then {@link socksCodeForReply}(reply), else the given code.
 */
export class SocksError extends OnionmcError {
  declare readonly code: SocksErrorCode;
  readonly reply: number | undefined;

  constructor(
    message: string,
    options: { cause?: unknown; reply?: number; code?: SocksErrorCode } = {},
  ) {
    const code =
      options.reply !== undefined
        ? socksCodeForReply(options.reply)
        : (options.code ?? 'ERR_SOCKS_PROTOCOL');
    super(code, message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.reply = options.reply;
  }
}

/** True for every error of a SOCKS5 dial (any {@link SocksErrorCode}). */
export function isSocksError(err: unknown): err is SocksError {
  return err instanceof SocksError;
}

/**
 * A listener could not bind; `errno` is the system's code (`EADDRINUSE`, `EACCES`, ...) when known.
 */
export class ListenError extends OnionmcError {
  readonly errno: string | undefined;

  constructor(message: string, options: { cause?: unknown; errno?: string } = {}) {
    super(
      'ERR_LISTEN',
      message,
      options.cause !== undefined ? { cause: options.cause } : undefined,
    );
    this.errno = options.errno;
  }
}

/** An HTTP API failure: `status` is the HTTP status sent with it. */
export class HttpError extends OnionmcError {
  readonly status: number;

  constructor(status: number, code: ErrorCode, message: string) {
    super(code, message);
    this.status = status;
  }
}

/** Returns true when `err` is an {@link OnionmcError} with the given code. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof OnionmcError && err.code === code;
}
