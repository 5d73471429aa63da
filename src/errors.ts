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
  | 'ERR_SOCKS'
  | 'ERR_DIAL'
  | 'ERR_NOT_ROUTABLE'
  | 'ERR_CLOSED'
  | 'ERR_TIMEOUT'
  | 'ERR_API';

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
      | 'ERR_TOR_TIMEOUT',
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(code, message, options);
    this.status = options?.status;
  }
}

/** A failure dialing through Tor's SOCKS5 port; `reply` is the SOCKS5 reply code when known. */
export class SocksError extends OnionmcError {
  readonly reply: number | undefined;

  constructor(message: string, options?: { cause?: unknown; reply?: number }) {
    super('ERR_SOCKS', message, options);
    this.reply = options?.reply;
  }
}

/** Returns true when `err` is an {@link OnionmcError} with the given code. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof OnionmcError && err.code === code;
}
