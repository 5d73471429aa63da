/** Waiting for conditions only visible by asking (e.g. a node's API coming up), for tests. */
export { pollUntil } from '../../src/util/poll.js';
