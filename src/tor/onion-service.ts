/**
 * Ephemeral onion services over the control port: ADD_ONION / DEL_ONION (control-spec §3.27,
 * §3.28), waiting for the first descriptor upload (HS_DESC events, control-spec §4.1.25), and the
 * tor version check for proof-of-work options (docs/protocol.md §8.5).
 *
 * Command shapes this module emits (docs/protocol.md §8.1, §8.5):
 *
 * | case                     | command                                                                |
 * | ------------------------ | ---------------------------------------------------------------------- |
 * | maker, key discarded     | `ADD_ONION NEW:ED25519-V3 Port=5222,127.0.0.1:8080 Flags=DiscardPK`     |
 * | persistent key           | `ADD_ONION ED25519-V3:<base64 64-byte key> Port=5222,127.0.0.1:8080`   |
 * | unix target              | `... Port=5222,unix:/run/onionmc/onion.sock ...`                        |
 * | with PoW (tor >= 0.4.9.2)| `... PoWDefensesEnabled=1 PoWQueueRate=25 PoWQueueBurst=250`            |
 * | removal                  | `DEL_ONION <56-char service id>`                                        |
 *
 * There is no `Detach` flag: the service dies with the control connection, as in the reference
 * (docs/protocol.md §8.1) and ng (docs/protocol.md §8.5).
 */
import { TorControlError } from '../errors.js';
import type { TorControlClient } from './control-client.js';

/** Default deadline of {@link waitForDescriptorUpload}: a first upload takes 30 s to a few minutes (docs/protocol.md §8.1). */
export const DESCRIPTOR_UPLOAD_TIMEOUT_MS = 300_000;

/** First tor version whose ADD_ONION accepts the PoW options (docs/protocol.md §8.5; NG: jmcore/src/jmcore/tor_control.py). */
export const POW_MIN_TOR_VERSION: readonly [number, number, number, number] = [0, 4, 9, 2];

/** A v3 service id: 56 base32 characters, no `.onion` (rend-spec-v3 §6 "Encoding onion addresses"). */
const SERVICE_ID = /^[a-z2-7]{56}$/;

/** The key argument of ADD_ONION: a new ed25519 key, or an existing expanded key. */
export type OnionKeySpec = { kind: 'new' } | { kind: 'ed25519-v3'; keyBlob: string };

/** Where tor forwards the service's streams: a TCP address, or a unix socket path. */
export type OnionTarget = { host: string; port: number } | { path: string };

/** Options of {@link addOnion}. */
export interface AddOnionOptions {
  /**
   * `{ kind: 'new' }` for `NEW:ED25519-V3`; `{ kind: 'ed25519-v3', keyBlob }` for a persistent
   * key, `keyBlob` being base64 of tor's 64-byte expanded secret key (onion-key.ts makes one).
   */
  key: OnionKeySpec;
  /** Port announced in the onion address, 1-65535; JoinMarket uses 5222 (docs/protocol.md §2.1 `ONION_VIRTUAL_PORT`). */
  virtualPort: number;
  /** Local listener tor forwards to (docs/protocol.md §8.1: `onion_serving_host:onion_serving_port`, default 127.0.0.1:8080). */
  target: OnionTarget;
  /** `Flags=DiscardPK`: tor does not return the new key (docs/protocol.md §8.1, reference maker). */
  discardPk: boolean;
  /** PoW defences (docs/protocol.md §8.5, ng maker; needs tor >= 0.4.9.2, see {@link torSupportsPow}). */
  pow?: { queueRate: number; queueBurst: number };
}

/** Result of {@link addOnion}. */
export interface AddOnionResult {
  /** The service id: the onion address without `.onion` (56 characters). */
  serviceId: string;
  /**
   * The new key's base64 blob (the part after `ED25519-V3:` in tor's `PrivateKey=` line), present
   * only for a new key without DiscardPK. A secret: never log it.
   */
  privateKey?: string;
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function invalid(message: string): TorControlError {
  return new TorControlError('ERR_TOR_COMMAND', message);
}

/** `host:port` or `unix:/path` as ADD_ONION's `Port=VIRTPORT,TARGET` wants it (control-spec §3.27). */
function formatTarget(target: OnionTarget): string {
  if ('path' in target) {
    if (!target.path.startsWith('/') || /[\s",\0]/.test(target.path)) {
      throw invalid(
        `onion service target ${JSON.stringify(target.path)} must be an absolute unix socket path without spaces, quotes or commas`,
      );
    }
    return `unix:${target.path}`;
  }
  if (!isPort(target.port))
    throw invalid(`onion service target port ${target.port} is not in 1-65535`);
  const host = target.host.replace(/^\[(.*)\]$/, '$1');
  if (host.length === 0 || /[\s,"[\]\0]/.test(host)) {
    throw invalid(
      `onion service target host ${JSON.stringify(target.host)} is not a host name or IP address`,
    );
  }
  return host.includes(':') ? `[${host}]:${target.port}` : `${host}:${target.port}`;
}

/**
 * The ADD_ONION command line for `options` (without CRLF), as {@link addOnion} sends it.
 * Exported for tests and logs of the shape; the line carries the key, so never log it whole.
 * @throws TorControlError `ERR_TOR_COMMAND` for an invalid port, target, key blob or PoW number.
 */
export function formatAddOnion(options: AddOnionOptions): string {
  let keyArg: string;
  if (options.key.kind === 'new') {
    keyArg = 'NEW:ED25519-V3';
  } else {
    // 64 bytes in base64: 86 characters and `==`.
    if (!/^[A-Za-z0-9+/]{86}==$/.test(options.key.keyBlob)) {
      throw invalid('the ED25519-V3 key blob must be base64 of a 64-byte expanded secret key');
    }
    keyArg = `ED25519-V3:${options.key.keyBlob}`;
  }
  if (!isPort(options.virtualPort))
    throw invalid(`onion virtual port ${options.virtualPort} is not in 1-65535`);
  const parts = [
    `ADD_ONION ${keyArg}`,
    `Port=${options.virtualPort},${formatTarget(options.target)}`,
  ];
  if (options.discardPk) parts.push('Flags=DiscardPK');
  if (options.pow !== undefined) {
    const { queueRate, queueBurst } = options.pow;
    if (
      !Number.isSafeInteger(queueRate) ||
      queueRate < 1 ||
      !Number.isSafeInteger(queueBurst) ||
      queueBurst < 1
    ) {
      throw invalid(
        `PoW queue rate and burst must be positive integers, got ${queueRate} and ${queueBurst}`,
      );
    }
    parts.push(`PoWDefensesEnabled=1 PoWQueueRate=${queueRate} PoWQueueBurst=${queueBurst}`);
  }
  return parts.join(' ');
}

/**
 * Adds an ephemeral onion service on `client`'s connection (control-spec §3.27; docs/protocol.md §8.1,
 * §8.5). The service lives as long as that connection.
 * @returns the service id, and the new key's blob unless discarded.
 * @throws TorControlError `ERR_TOR_COMMAND` for invalid options (before sending) or when tor
 *   refuses (`status`: 512 bad argument, 550 address collision, 551 internal error);
 *   `ERR_TOR_CONTROL` when tor's answer has no valid ServiceID; others as
 *   {@link TorControlClient.command}.
 */
export async function addOnion(
  client: TorControlClient,
  options: AddOnionOptions,
): Promise<AddOnionResult> {
  const reply = await client.command(formatAddOnion(options));
  let serviceId: string | undefined;
  let privateKey: string | undefined;
  for (const line of reply.lines) {
    if (line.text.startsWith('ServiceID=')) serviceId = line.text.slice('ServiceID='.length);
    else if (line.text.startsWith('PrivateKey=')) {
      const value = line.text.slice('PrivateKey='.length);
      privateKey = value.startsWith('ED25519-V3:') ? value.slice('ED25519-V3:'.length) : value;
    }
  }
  if (serviceId === undefined || !SERVICE_ID.test(serviceId)) {
    throw new TorControlError('ERR_TOR_CONTROL', 'ADD_ONION answer carries no valid v3 ServiceID');
  }
  return privateKey === undefined ? { serviceId } : { serviceId, privateKey };
}

/**
 * Removes an onion service added on this connection (`DEL_ONION`, control-spec §3.28).
 * @param serviceId the 56-character id (a trailing `.onion` is accepted and dropped).
 * @throws TorControlError `ERR_TOR_COMMAND` for a malformed id or when tor refuses
 *   (552 Unknown Onion Service id); others as {@link TorControlClient.command}.
 */
export async function delOnion(client: TorControlClient, serviceId: string): Promise<void> {
  const id = serviceId.endsWith('.onion') ? serviceId.slice(0, -'.onion'.length) : serviceId;
  if (!SERVICE_ID.test(id))
    throw invalid(`not a v3 onion service id: ${JSON.stringify(serviceId)}`);
  await client.command(`DEL_ONION ${id}`);
}

/** Options of the waits for a descriptor upload. */
export interface WaitOptions {
  /** Aborts the wait; it rejects with `ERR_TOR_CONTROL` (cause: the signal's reason). */
  signal?: AbortSignal;
  /** Deadline, ms; default {@link DESCRIPTOR_UPLOAD_TIMEOUT_MS}. It rejects with `ERR_TOR_TIMEOUT`. */
  timeoutMs?: number;
}

/**
 * Records `HS_DESC UPLOADED` events from the moment it is created, so an upload that happens
 * before {@link DescriptorUploadWatcher.wait} is called is not missed. Made by
 * {@link watchDescriptorUploads}.
 */
export interface DescriptorUploadWatcher {
  /**
   * Resolves with the HSDir (e.g. `$AB12...~relay1`) of the first `650 HS_DESC UPLOADED
   * <serviceId> ...` seen since the watcher was created.
   * @throws TorControlError `ERR_TOR_TIMEOUT` at the deadline; `ERR_TOR_CONTROL` when the
   *   connection closes, the signal aborts, or the watcher is stopped.
   */
  wait(serviceId: string, options?: WaitOptions): Promise<string>;
  /** Unsubscribes from the events; pending waits reject. Idempotent. Leaves SETEVENTS as it is. */
  stop(): void;
}

/** Parses `HS_DESC UPLOADED <address> <auth> <hsdir> ...` (control-spec §4.1.25). */
function parseUploaded(text: string): { serviceId: string; hsDir: string } | undefined {
  const words = text.split(' ');
  if (words[0] !== 'HS_DESC' || words[1] !== 'UPLOADED') return undefined;
  const serviceId = words[2];
  const hsDir = words[4];
  if (serviceId === undefined || hsDir === undefined) return undefined;
  return { serviceId, hsDir };
}

/**
 * Subscribes to HS_DESC events (adding `HS_DESC` to the connection's SETEVENTS set when absent)
 * and starts recording uploads. Call it BEFORE `addOnion`, then `wait(serviceId)` after, so the
 * first upload cannot be missed:
 *
 * ```ts
 * const uploads = await watchDescriptorUploads(client);
 * const { serviceId } = await addOnion(client, options);
 * const hsDir = await uploads.wait(serviceId);
 * uploads.stop();
 * ```
 * @throws as {@link TorControlClient.setEvents}.
 */
export async function watchDescriptorUploads(
  client: TorControlClient,
): Promise<DescriptorUploadWatcher> {
  const seen = new Map<string, string>();
  const waiters = new Set<{
    serviceId: string;
    resolve: (hsDir: string) => void;
    reject: (err: Error) => void;
  }>();
  let stopped = false;

  const unsubscribe = client.onEvent('HS_DESC', (line) => {
    const upload = parseUploaded(line.text);
    if (upload === undefined) return;
    if (!seen.has(upload.serviceId)) seen.set(upload.serviceId, upload.hsDir);
    for (const waiter of [...waiters]) {
      if (waiter.serviceId === upload.serviceId) waiter.resolve(upload.hsDir);
    }
  });

  const stop = (reason: Error): void => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    for (const waiter of [...waiters]) waiter.reject(reason);
  };

  void client.closed.then((err) => {
    stop(
      new TorControlError(
        'ERR_TOR_CONTROL',
        `the control connection closed while waiting for a descriptor upload${err === undefined ? '' : `: ${err.message}`}`,
        { cause: err },
      ),
    );
  });

  if (!client.events.includes('HS_DESC')) {
    try {
      await client.setEvents([...client.events, 'HS_DESC']);
    } catch (err) {
      stop(new TorControlError('ERR_TOR_CONTROL', 'descriptor watcher stopped'));
      throw err;
    }
  }

  return {
    wait(serviceId: string, options: WaitOptions = {}): Promise<string> {
      const id = serviceId.endsWith('.onion') ? serviceId.slice(0, -'.onion'.length) : serviceId;
      const known = seen.get(id);
      if (known !== undefined) return Promise.resolve(known);
      if (stopped) {
        return Promise.reject(
          new TorControlError('ERR_TOR_CONTROL', 'the descriptor upload watcher is stopped'),
        );
      }
      const timeoutMs = options.timeoutMs ?? DESCRIPTOR_UPLOAD_TIMEOUT_MS;
      const { signal } = options;
      return new Promise<string>((resolve, reject) => {
        const finish = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          waiters.delete(waiter);
        };
        const waiter = {
          serviceId: id,
          resolve: (hsDir: string) => {
            finish();
            resolve(hsDir);
          },
          reject: (err: Error) => {
            finish();
            reject(err);
          },
        };
        const onAbort = (): void => {
          waiter.reject(
            new TorControlError(
              'ERR_TOR_CONTROL',
              `waiting for the descriptor upload of ${id} was aborted`,
              {
                cause: signal?.reason,
              },
            ),
          );
        };
        const timer = setTimeout(() => {
          waiter.reject(
            new TorControlError(
              'ERR_TOR_TIMEOUT',
              `no descriptor of ${id} was uploaded within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        if (signal?.aborted === true) {
          onAbort();
          return;
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.add(waiter);
      });
    },
    stop(): void {
      stop(new TorControlError('ERR_TOR_CONTROL', 'the descriptor upload watcher was stopped'));
    },
  };
}

/**
 * Waits for the first `650 HS_DESC UPLOADED <serviceId> ...` and resolves with its HSDir
 * (subscribing to HS_DESC first if needed). Use it only when the service was added after the
 * subscription was in place; otherwise use {@link watchDescriptorUploads} before `addOnion`.
 * @throws as {@link DescriptorUploadWatcher.wait} and {@link TorControlClient.setEvents}.
 */
export async function waitForDescriptorUpload(
  client: TorControlClient,
  serviceId: string,
  options: WaitOptions = {},
): Promise<string> {
  const watcher = await watchDescriptorUploads(client);
  try {
    return await watcher.wait(serviceId, options);
  } finally {
    watcher.stop();
  }
}

/**
 * True when tor `version` accepts the ADD_ONION PoW options, i.e. is at least 0.4.9.2 (docs/protocol.md §8.5).
 * Accepts `0.4.9.11`, `0.4.9.2-alpha`, `0.4.9.11 (git-abcdef)`, `Tor version 0.4.9.11.`; an
 * unparseable version gives false.
 */
export function torSupportsPow(version: string): boolean {
  const match = /(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
  if (match === null) return false;
  const parts = [match[1], match[2], match[3], match[4] ?? '0'].map(Number);
  for (let i = 0; i < POW_MIN_TOR_VERSION.length; i += 1) {
    const have = parts[i] ?? 0;
    const need = POW_MIN_TOR_VERSION[i] ?? 0;
    if (have !== need) return have > need;
  }
  return true;
}
