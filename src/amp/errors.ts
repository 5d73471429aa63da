/**
 * Errors of the AMP codec and session (JoinMarket's client-daemon link, docs/joinmarketd.md).
 *
 * `AmpError` is a {@link ProtocolError} (code `ERR_PROTOCOL`): bytes from the client that break
 * Twisted AMP's box format or a command's argument types. `ampCode` tells the cases apart; code
 * and tests match on it, never on the message. `AmpRemoteError` is an error box the other side
 * answered our request with.
 */
import { OnionmcError, ProtocolError } from '../errors.js';

/** What went wrong in an AMP box or argument. */
export type AmpErrorCode =
  /** A key longer than 255 bytes or a value longer than 65,535 bytes (Twisted `TooLong`). */
  | 'ERR_AMP_TOO_LONG'
  /** A box or a list element cut short. */
  | 'ERR_AMP_TRUNCATED'
  /** A box over the size or key-count cap, or with a key given twice. */
  | 'ERR_AMP_BAD_BOX'
  /** A request/answer/error box missing its `_command`/`_ask`/`_answer`/`_error` keys. */
  | 'ERR_AMP_BAD_ENVELOPE'
  /** A missing argument or one that does not parse as its type. */
  | 'ERR_AMP_BAD_ARGUMENT'
  /** A `_command` that is not one of the 26 JoinMarket commands (Twisted `UNHANDLED`). */
  | 'ERR_AMP_UNKNOWN_COMMAND';

/** A violation of the AMP box format or of a command's argument types. */
export class AmpError extends ProtocolError {
  readonly ampCode: AmpErrorCode;

  constructor(ampCode: AmpErrorCode, message: string) {
    super(message);
    this.ampCode = ampCode;
  }
}

/**
 * The other side answered a request of ours with an error box (`_error`, `_error_code`,
 * `_error_description`); Twisted's `RemoteAmpError`. Code `ERR_PROTOCOL`.
 */
export class AmpRemoteError extends OnionmcError {
  /** The `_error_code` value, e.g. `UNKNOWN` or `UNHANDLED`. */
  readonly errorCode: string;
  /** The `_error_description` value. */
  readonly description: string;

  constructor(errorCode: string, description: string) {
    super('ERR_PROTOCOL', `AMP error ${errorCode}: ${description}`);
    this.errorCode = errorCode;
    this.description = description;
  }
}

/** True when `err` is an {@link AmpError} with the given `ampCode`. */
export function hasAmpCode(err: unknown, ampCode: AmpErrorCode): boolean {
  return err instanceof AmpError && err.ampCode === ampCode;
}
