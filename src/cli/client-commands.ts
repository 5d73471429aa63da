/**
 * The client commands of `onionmc`: `info`, `peers`, `orderbook`, `send` and `listen` talk to a
 * running daemon through its local API socket (`--socket`, or `<datadir>/onionmc.sock`). They
 * print aligned tables, or JSON with `--json`; `listen` prints one line per event.
 */
import http from 'node:http';
import { createParser } from 'eventsource-parser';
import { ApiClient } from '../api/client.js';
import type { ApiEndpoint } from '../api/server.js';
import { OnionmcError } from '../errors.js';
import type { OrderbookEntry } from '../node/offers.js';

/** Largest event the `listen` command buffers, characters (a line is at most 40,000 bytes). */
export const LISTEN_MAX_EVENT_CHARS = 1024 * 1024;

/**
 * No daemon answers on the socket; or (ECONNRESET) one accepted the connection and closed it at
 * once, as the daemon does past its API connection cap (src/api/server.ts `API_MAX_CONNECTIONS`).
 */
export class NoDaemonError extends OnionmcError {
  constructor(endpoint: ApiEndpoint, cause: unknown) {
    const where = endpoint.kind === 'unix' ? endpoint.path : `${endpoint.host}:${endpoint.port}`;
    const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'error';
    super(
      'ERR_API',
      code === 'ECONNRESET'
        ? `the daemon on ${where} closed the connection at once (ECONNRESET): it may have its most API connections open (docs/limits.md), or be stopping`
        : `no onionmc daemon answers on ${where} (${code}): is it running? (--socket PATH or --datadir DIR)`,
      { cause },
    );
  }
}

/** Output of a command: where lines go. */
export interface Output {
  line(text: string): void;
}

function cellText(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${v}`;
  return JSON.stringify(v);
}

/** Formats rows as left-aligned columns under a header; numbers are right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly unknown[])[]): string[] {
  const text = rows.map((row) => row.map(cellText));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const numeric = header.map(
    (_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'),
  );
  const format = (cells: readonly string[], isHeader: boolean): string =>
    cells
      .map((c, i) =>
        numeric[i] === true && !isHeader ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  return [format(header, true), ...text.map((r) => format(r, false))];
}

async function call(
  api: ApiClient,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  try {
    return await api.call(method, path, body);
  } catch (err) {
    if (err instanceof OnionmcError) throw err;
    throw new NoDaemonError(api.endpoint, err);
  }
}

type Info = Record<string, unknown> & {
  directories?: {
    location: string;
    nick?: string;
    state: string;
    lastMessageSecondsAgo?: number | null;
  }[];
  peers?: Record<string, unknown>[];
  tor?: Record<string, unknown>;
};

/** `onionmc info`: what the daemon is and how it is doing. */
export async function infoCommand(api: ApiClient, json: boolean, out: Output): Promise<void> {
  const info = (await call(api, 'GET', '/v1/info')) as Info;
  if (json) {
    out.line(JSON.stringify(info, null, 2));
    return;
  }
  const tor = info.tor;
  const pairs: [string, unknown][] = [
    ['version', info.version],
    ['nick', info.nick],
    ['role', info.role],
    ['state', info.state],
    ['uptime', `${String(info.uptimeSeconds)} s`],
    ['network', info.network],
    ['location', info.location],
    ...(tor !== undefined
      ? ([
          ['tor version', tor.version],
          ['onion', tor.onion],
          ['PoW defences', tor.powDefenses === true ? 'on' : 'off'],
        ] as [string, unknown][])
      : ([['mode', 'testing (no Tor)']] as [string, unknown][])),
    ['peers', (info.peers ?? []).length],
  ];
  for (const line of table(['key', 'value'], pairs).slice(1)) out.line(line);
  if (info.directories !== undefined) {
    out.line('');
    for (const line of table(
      ['directory node', 'nick', 'state', 'last message'],
      info.directories.map((d) => [
        d.location,
        d.nick,
        d.state,
        d.lastMessageSecondsAgo === null || d.lastMessageSecondsAgo === undefined
          ? 'never'
          : `${d.lastMessageSecondsAgo} s ago`,
      ]),
    ))
      out.line(line);
  }
}

/** `onionmc peers`: the daemon's peers (a directory node's clients, or a client's direct links). */
export async function peersCommand(api: ApiClient, json: boolean, out: Output): Promise<void> {
  const info = (await call(api, 'GET', '/v1/info')) as Info;
  const peers = info.peers ?? [];
  if (json) {
    out.line(JSON.stringify(peers, null, 2));
    return;
  }
  const rows =
    info.role === 'directory'
      ? peers.map((p) => [p.nick, p.location, p.state, p.verified === true ? 'yes' : 'no'])
      : peers.map((p) => [p.nick, p.location, 'handshaked', p.direction]);
  const header =
    info.role === 'directory'
      ? ['nick', 'location', 'state', 'verified']
      : ['nick', 'location', 'state', 'direction'];
  for (const line of table(header, rows)) out.line(line);
}

/** `onionmc orderbook`: the offers the daemon has seen, as JoinMarket's orderbook watcher lists them. */
export async function orderbookCommand(api: ApiClient, json: boolean, out: Output): Promise<void> {
  const { offers } = (await call(api, 'GET', '/v1/orderbook')) as { offers: OrderbookEntry[] };
  if (json) {
    out.line(JSON.stringify(offers, null, 2));
    return;
  }
  for (const line of table(
    ['maker', 'type', 'oid', 'minsize', 'maxsize', 'txfee', 'cjfee'],
    offers.map((o) => [o.nick, o.type, o.oid, o.minsize, o.maxsize, o.txfee, o.cjfee]),
  ))
    out.line(line);
}

/** `onionmc send`: a pubmsg (`--pubmsg '!orderbook'`) or a privmsg to a nick. */
export async function sendCommand(
  api: ApiClient,
  message:
    { pubmsg: string } | { to: string; cmd: string; body: string; route: 'any' | 'directory' },
  json: boolean,
  out: Output,
): Promise<void> {
  const answer =
    'pubmsg' in message
      ? await call(api, 'POST', '/v1/pubmsg', { message: message.pubmsg })
      : await call(api, 'POST', '/v1/privmsg', message);
  if (json) {
    out.line(JSON.stringify(answer));
    return;
  }
  const a = answer as {
    directories?: number;
    via?: { kind: string; location?: string };
    confirmed?: boolean;
  };
  // docs/api.md "Delivery": a 200 is confirmed unless the route cannot confirm.
  const note = a.confirmed === false ? ' (not confirmed: the route does not answer pings)' : '';
  if (a.directories !== undefined) out.line(`sent to ${a.directories} directory node(s)${note}`);
  else if (a.via?.kind === 'direct') out.line(`sent on the direct link${note}`);
  else out.line(`sent through the directory node ${a.via?.location ?? ''}`.trimEnd() + note);
}

/**
 * `onionmc listen`: prints the daemon's events as they come (`NAME JSON`, or one JSON object per
 * line with `json`), until `signal` aborts (resolves) or the daemon closes the stream (rejects).
 * An event longer than {@link LISTEN_MAX_EVENT_CHARS} rejects with `ERR_API` and closes the stream;
 * a stream cut by the daemon rejects with `ERR_CLOSED`; no daemon on `endpoint` rejects with
 * {@link NoDaemonError}.
 * @param names only these events; empty: every event.
 * @param onOpen called once the stream is open (the CLI says so on stderr).
 */
export function listenCommand(
  endpoint: ApiEndpoint,
  names: readonly string[],
  json: boolean,
  out: Output,
  signal: AbortSignal,
  onOpen: () => void = () => undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const base =
      endpoint.kind === 'unix'
        ? { socketPath: endpoint.path }
        : { host: endpoint.host, port: endpoint.port };
    const req = http.request({ ...base, method: 'GET', path: '/v1/events', signal }, (res) => {
      if (res.statusCode !== 200) {
        // The daemon's JSON error names the cause (503 ERR_BUSY: too many streams); read at most
        // LISTEN_MAX_EVENT_CHARS of it.
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < LISTEN_MAX_EVENT_CHARS) text += chunk;
        });
        const refused = (): void => {
          let error: { code?: unknown; message?: unknown } | undefined;
          try {
            error = (JSON.parse(text) as { error?: typeof error } | null)?.error;
          } catch {
            // not JSON: the status alone
          }
          const detail = [error?.code, error?.message].filter((v) => typeof v === 'string');
          reject(
            new OnionmcError(
              'ERR_API',
              [`GET /v1/events: ${String(res.statusCode ?? 0)}`, ...detail].join(' '),
            ),
          );
        };
        res.on('end', refused);
        res.on('close', refused);
        res.on('error', () => undefined);
        return;
      }
      onOpen();
      let overLong = false;
      const parser = createParser({
        maxBufferSize: LISTEN_MAX_EVENT_CHARS,
        onEvent(event) {
          const name = event.event ?? 'message';
          if (names.length > 0 && !names.includes(name)) return;
          let data: unknown = event.data;
          try {
            data = JSON.parse(event.data) as unknown;
          } catch {
            // not JSON: print the text as it came
          }
          out.line(
            json ? JSON.stringify({ event: name, data }) : `${name} ${JSON.stringify(data)}`,
          );
        },
        onError(err) {
          // An invalid `retry` or an unknown field is ignored (as an EventSource does); only an
          // event over the cap ends the stream, with its own error rather than "no daemon".
          if (err.type !== 'max-buffer-size-exceeded') return;
          overLong = true;
          reject(
            new OnionmcError(
              'ERR_API',
              `GET /v1/events: an event passed ${String(LISTEN_MAX_EVENT_CHARS)} characters; stream closed`,
            ),
          );
          req.destroy();
        },
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        // The parser throws once it gave up; chunks already read are not fed to it.
        if (!overLong) parser.feed(chunk);
      });
      res.on('end', () => {
        reject(new OnionmcError('ERR_CLOSED', 'the daemon closed the event stream'));
      });
      res.on('error', () => undefined);
      // Closed without its end: the daemon cut the stream (it cuts a client that reads too slowly,
      // docs/limits.md) or died. After 'end', after Ctrl-C or an over-long event, a no-op.
      res.on('close', () => {
        if (signal.aborted) resolve();
        else
          reject(
            new OnionmcError(
              'ERR_CLOSED',
              'the daemon cut the event stream (it stopped, or this client read too slowly)',
            ),
          );
      });
    });
    req.on('error', (err) => {
      if (signal.aborted) resolve();
      else reject(new NoDaemonError(endpoint, err));
    });
    req.end();
  });
}
