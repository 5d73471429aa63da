/** Re-exports the one backoff of onionmc (src/util/backoff.ts) for the node layer. */
export { Backoff, DEFAULT_DIRECTORY_BACKOFF, type BackoffOptions } from '../util/backoff.js';
