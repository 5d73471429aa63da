/**
 * The onion service of a running node, kept alive across control-port drops and tor restarts.
 *
 * One {@link OnionRuntime} owns one control connection and the onion service added on it (no
 * `Detach`: the service lives as long as the connection, docs/protocol.md §8.1, §8.5). Lifecycle:
 *
 * 1. {@link OnionRuntime.start}: connect (TCP or unix control socket), authenticate (SAFECOOKIE,
 *    COOKIE, password or none), `GETINFO version`, subscribe to HS_DESC, `ADD_ONION` (a new key
 *    with `Flags=DiscardPK` for a maker, docs/protocol.md §8.1; the key of hidden_service_dir for a directory
 *    node, docs/protocol.md §8.2), then wait until tor reports the descriptor `UPLOADED` to at least one HSDir
 *    (as txtorcon does before the reference announces anything, docs/protocol.md §8.1). Any failure here is
 *    thrown: the daemon refuses to start with an error an operator can act on.
 * 2. While running: when the control connection closes (tor restarted, crashed, or closed it), the
 *    runtime reconnects with backoff ({@link ONION_RECONNECT_INITIAL_MS} doubling up to
 *    {@link ONION_RECONNECT_MAX_MS}) and re-creates the service the same way; listeners given to
 *    {@link OnionRuntime.onRecreated} then learn the (for an ephemeral key, new) address, so a
 *    maker can re-handshake its directories under it.
 * 3. {@link OnionRuntime.stop}: `DEL_ONION`, then QUIT; no more reconnects.
 *
 * Proof-of-work defences (docs/protocol.md §8.5): with tor >= 0.4.9.2 (`GETINFO version`) and
 * `pow_defenses = true`, ADD_ONION carries `PoWDefensesEnabled=1 PoWQueueRate=.. PoWQueueBurst=..`.
 * The state is logged once, and again only when it changes: one info line with the numbers, an
 * info line when the configuration turns them off, one warning when tor is too old.
 *
 * Keys and cookies are never logged (the control client logs only command keywords).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TorControlError } from '../errors.js';
import { Backoff } from '../util/backoff.js';
import type { Logger } from '../log.js';
import { ONION_VIRTUAL_PORT } from '../wire/location.js';
import { TorControlClient, type AuthMethod } from './control-client.js';
import type { Endpoint } from './endpoint.js';
import { formatEndpoint } from './endpoint.js';
import type { OnionKey } from './onion-key.js';
import {
  addOnion,
  delOnion,
  DESCRIPTOR_UPLOAD_TIMEOUT_MS,
  POW_MIN_TOR_VERSION,
  torSupportsPow,
  watchDescriptorUploads,
  type OnionTarget,
} from './onion-service.js';

/** First delay before reconnecting to tor after the control connection closed. Our choice. */
export const ONION_RECONNECT_INITIAL_MS = 1_000;
/** Longest delay between reconnect attempts (the delay doubles up to it). Our choice. */
export const ONION_RECONNECT_MAX_MS = 10_000;

/** Which key the onion service uses. */
export type OnionKeySource =
  /** A new key per creation, discarded by tor (`NEW:ED25519-V3`, `Flags=DiscardPK`; docs/protocol.md §8.1). */
  | { readonly kind: 'ephemeral' }
  /** The key of hidden_service_dir (onion-key.ts): the same address every time (docs/protocol.md §8.2). */
  | { readonly kind: 'persistent'; readonly key: OnionKey };

/** PoW settings (config `powDefenses`, docs/protocol.md §8.5). */
export interface OnionPowSettings {
  readonly enabled: boolean;
  /** `PoWQueueRate`: introduction requests per second. */
  readonly queueRate: number;
  /** `PoWQueueBurst`: introduction requests queued in a burst. */
  readonly queueBurst: number;
}

/** Options of an {@link OnionRuntime}. */
export interface OnionRuntimeOptions {
  /** Tor's control port or control socket (config `torControl`). */
  readonly control: Endpoint;
  /** `tor_control_password`, used only when tor offers HASHEDPASSWORD. */
  readonly password?: string | undefined;
  /** A cookie file to read instead of the one tor names (tor in a container). */
  readonly cookieFile?: string | undefined;
  readonly key: OnionKeySource;
  /** Where tor forwards the service's streams: `onion_serving_host:onion_serving_port` (docs/protocol.md §8.1). */
  readonly target: OnionTarget;
  /** The onion's virtual port; default 5222 (docs/protocol.md §2.1 `ONION_VIRTUAL_PORT`). */
  readonly virtualPort?: number;
  readonly pow: OnionPowSettings;
  readonly logger: Logger;
  /** Deadline for the first descriptor upload, ms; default {@link DESCRIPTOR_UPLOAD_TIMEOUT_MS}. */
  readonly uploadTimeoutMs?: number;
  /** Reconnect delays in ms; defaults {@link ONION_RECONNECT_INITIAL_MS}, {@link ONION_RECONNECT_MAX_MS}. */
  readonly reconnect?: { readonly initialMs: number; readonly maxMs: number };
}

/** One control connection with its onion service. */
interface Session {
  readonly client: TorControlClient;
  readonly serviceId: string;
}

/** `PoWDefensesEnabled` decision and why. */
type PowState = 'on' | 'off-config' | 'off-version';

/** The onion service of a node; see the module header. */
export class OnionRuntime {
  readonly #options: OnionRuntimeOptions;
  readonly #logger: Logger;
  readonly #listeners = new Set<(onionAddress: string) => void>();
  readonly #abort = new AbortController();
  #session: Session | undefined;
  #opening: TorControlClient | undefined;
  #running = false;
  #stopped = false;
  #reconnecting: Promise<void> | undefined;
  #powState: PowState | undefined;
  #authMethod: AuthMethod | undefined;
  #torVersion: string | undefined;

  constructor(options: OnionRuntimeOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'onion' });
  }

  /** `<56 chars>.onion` of the current service; undefined before start and while re-creating. */
  get onionAddress(): string | undefined {
    return this.#session === undefined ? undefined : `${this.#session.serviceId}.onion`;
  }

  /** How the last control connection authenticated (SAFECOOKIE, COOKIE, HASHEDPASSWORD, NULL). */
  get authMethod(): AuthMethod | undefined {
    return this.#authMethod;
  }

  /** True when the current service was created with PoW defences on. */
  get powDefenses(): boolean {
    return this.#powState === 'on';
  }

  /** Tor's version, as `GETINFO version` gave it on the last connection. */
  get torVersion(): string | undefined {
    return this.#torVersion;
  }

  /**
   * Calls `listener` with the new `<onion>` address each time the service is re-created after a
   * lost control connection (not after the first start).
   * @returns a function that unsubscribes.
   */
  onRecreated(listener: (onionAddress: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Creates the onion service and resolves with its address (`<56 chars>.onion`) once tor has
   * uploaded its descriptor to at least one HSDir. Then watches the control connection.
   * @throws TorControlError `ERR_TOR_CONTROL_UNREACHABLE` (the message names the address and the
   *   torrc lines), `ERR_TOR_AUTH` (cookie file unreadable: the message names it and the group to
   *   join; refused password), `ERR_TOR_COMMAND` (tor refused ADD_ONION), `ERR_TOR_TIMEOUT` (no
   *   upload in time); `ERR_TOR_CONTROL` when stopped meanwhile or tor closed the connection.
   */
  async start(): Promise<string> {
    if (this.#isStopped())
      throw new TorControlError('ERR_TOR_CONTROL', 'the onion service was stopped');
    if (this.#session !== undefined) return `${this.#session.serviceId}.onion`;
    const session = await this.#open();
    if (this.#isStopped()) {
      await this.#closeSession(session);
      throw new TorControlError('ERR_TOR_CONTROL', 'the onion service was stopped while starting');
    }
    this.#running = true;
    this.#adopt(session);
    return `${session.serviceId}.onion`;
  }

  /** Removes the service (DEL_ONION), closes the control connection, stops reconnecting. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    this.#abort.abort();
    this.#opening?.destroy();
    const session = this.#session;
    this.#session = undefined;
    if (session !== undefined) await this.#closeSession(session);
    await this.#reconnecting;
  }

  /** Connects, authenticates and creates the service; cleans up after itself on failure. */
  async #open(): Promise<Session> {
    const { control } = this.#options;
    const startedAt = Date.now();
    const client = await TorControlClient.connect(control, {
      logger: this.#logger,
      signal: this.#abort.signal,
    });
    this.#opening = client;
    try {
      await client.authenticate({
        ...(this.#options.password !== undefined ? { password: this.#options.password } : {}),
        ...(this.#options.cookieFile !== undefined ? { cookieFile: this.#options.cookieFile } : {}),
      });
      this.#authMethod = client.authMethod;
      const version = await client.getVersion();
      this.#torVersion = version;
      this.#logger.info(
        { control: formatEndpoint(control), method: client.authMethod, torVersion: version },
        "authenticated to tor's control port",
      );
      const pow = this.#decidePow(version);
      const uploads = await watchDescriptorUploads(client);
      let serviceId: string;
      try {
        const { key } = this.#options;
        const added = await addOnion(client, {
          key:
            key.kind === 'ephemeral'
              ? { kind: 'new' }
              : { kind: 'ed25519-v3', keyBlob: key.key.keyBlob },
          virtualPort: this.#options.virtualPort ?? ONION_VIRTUAL_PORT,
          target: this.#options.target,
          discardPk: key.kind === 'ephemeral',
          ...(pow
            ? {
                pow: {
                  queueRate: this.#options.pow.queueRate,
                  queueBurst: this.#options.pow.queueBurst,
                },
              }
            : {}),
        });
        serviceId = added.serviceId;
        if (key.kind === 'persistent' && serviceId !== key.key.serviceId) {
          throw new TorControlError(
            'ERR_TOR_COMMAND',
            `tor created ${serviceId}.onion from the key of hidden_service_dir, which gives ${key.key.onionAddress}`,
          );
        }
        const timeoutMs = this.#options.uploadTimeoutMs ?? DESCRIPTOR_UPLOAD_TIMEOUT_MS;
        let hsDir: string;
        try {
          hsDir = await uploads.wait(serviceId, { timeoutMs, signal: this.#abort.signal });
        } catch (err) {
          if (err instanceof TorControlError && err.code === 'ERR_TOR_TIMEOUT') {
            throw new TorControlError(
              'ERR_TOR_TIMEOUT',
              `tor uploaded no descriptor of ${serviceId}.onion within ${timeoutMs} ms: is tor connected` +
                ' to the Tor network (its log says "Bootstrapped 100%")?',
              { cause: err },
            );
          }
          throw err;
        }
        this.#logger.info(
          {
            onion: `${serviceId}.onion`,
            hsDir,
            persistent: key.kind === 'persistent',
            ms: Date.now() - startedAt,
          },
          'onion service published',
        );
      } finally {
        uploads.stop();
      }
      return { client, serviceId };
    } catch (err) {
      client.destroy();
      throw err;
    } finally {
      this.#opening = undefined;
    }
  }

  /** Whether to ask for PoW with this tor, logging the decision when it changes (docs/protocol.md §8.5). */
  #decidePow(version: string): boolean {
    const { pow } = this.#options;
    const state: PowState = !pow.enabled
      ? 'off-config'
      : torSupportsPow(version)
        ? 'on'
        : 'off-version';
    if (state !== this.#powState) {
      this.#powState = state;
      if (state === 'on') {
        this.#logger.info(
          { torVersion: version, queueRate: pow.queueRate, queueBurst: pow.queueBurst },
          `onion service PoW defences on (PoWQueueRate=${pow.queueRate}, PoWQueueBurst=${pow.queueBurst})`,
        );
      } else if (state === 'off-config') {
        this.#logger.info(
          'onion service PoW defences off: pow_defenses = false in the configuration',
        );
      } else {
        this.#logger.warn(
          { torVersion: version },
          `onion service PoW defences off: tor ${version} is older than ${POW_MIN_TOR_VERSION.join('.')},` +
            ' the first version that supports them; upgrade tor to turn them on',
        );
      }
    }
    return state === 'on';
  }

  /** Read through a call: the state changes while start() and #reconnect() await. */
  #isStopped(): boolean {
    return this.#stopped;
  }

  #isRunning(): boolean {
    return this.#running;
  }

  /** Makes `session` current and watches its connection. */
  #adopt(session: Session): void {
    this.#session = session;
    void session.client.closed.then((err) => {
      this.#onClosed(session, err);
    });
  }

  #onClosed(session: Session, err: Error | undefined): void {
    if (!this.#running || this.#session !== session) return;
    this.#session = undefined;
    this.#logger.warn(
      { onion: `${session.serviceId}.onion`, reason: err?.message ?? 'closed' },
      'lost the tor control connection, and with it the onion service; re-creating it',
    );
    this.#reconnecting = this.#reconnect(session.serviceId);
  }

  /** Re-creates the service with backoff until it works or the runtime stops. */
  async #reconnect(previousServiceId: string): Promise<void> {
    const initialMs = this.#options.reconnect?.initialMs ?? ONION_RECONNECT_INITIAL_MS;
    const maxMs = this.#options.reconnect?.maxMs ?? ONION_RECONNECT_MAX_MS;
    // initialMs, doubling up to maxMs, plus up to 10 % of initialMs of jitter.
    const backoff = new Backoff({
      initialMs: initialMs / 2,
      factor: 2,
      maxMs,
      jitterMs: [0, initialMs / 10],
      stableMs: 0,
    });
    while (this.#isRunning()) {
      const delayMs = backoff.next();
      try {
        await sleep(delayMs, undefined, { signal: this.#abort.signal });
      } catch {
        return; // stopped
      }
      if (!this.#isRunning()) return;
      let session: Session;
      try {
        session = await this.#open();
      } catch (err) {
        if (!this.#isRunning()) return;
        this.#logger.warn(
          { reason: err instanceof Error ? err.message : String(err), attempt: backoff.attempts },
          'cannot re-create the onion service yet; will retry',
        );
        continue;
      }
      if (!this.#isRunning()) {
        await this.#closeSession(session);
        return;
      }
      this.#adopt(session);
      const address = `${session.serviceId}.onion`;
      this.#logger.info(
        { onion: address, changed: session.serviceId !== previousServiceId },
        'onion service re-created',
      );
      for (const listener of [...this.#listeners]) {
        try {
          listener(address);
        } catch (err) {
          this.#logger.error({ err }, 'onion re-creation listener failed');
        }
      }
      return;
    }
  }

  /** DEL_ONION (best effort), then a polite close. */
  async #closeSession(session: Session): Promise<void> {
    if (!session.client.isClosed) {
      try {
        await delOnion(session.client, session.serviceId);
      } catch (err) {
        this.#logger.debug(
          { reason: err instanceof Error ? err.message : String(err) },
          'DEL_ONION failed',
        );
      }
    }
    await session.client.close();
  }
}
