/**
 * Prometheus metrics of a running node (`GET /metrics`), built with prom-client. The node's own
 * counters (src/node/counters.ts, named `<group>.<name>`) are read at scrape time and mapped onto
 * a few labelled families; peer gauges come from the node's status methods; what the node does
 * not count itself (directory reconnects, NaCl sessions started) the daemon counts from the node's
 * events. prom-client's default process metrics and event-loop lag are included.
 */
import client from 'prom-client';

/** What the metrics are read from at scrape time. */
export interface MetricsSource {
  /** The role, once known. */
  role(): string | undefined;
  /** The node's counters snapshot (`{ "relayed.privmsg": 3, ... }`), empty before start. */
  counters(): Readonly<Record<string, number>>;
  /** Peers (and, on a maker or taker, directory links) with their role and state. */
  peers(): readonly { readonly role: string; readonly state: string }[];
  /** Seconds since start. */
  uptimeSeconds(): number;
}

/** Counters whose name says a handshake was refused, and the reason label they get. */
const HANDSHAKE_REFUSALS: Readonly<Record<string, string>> = {
  'handshake.rejected': 'rejected',
  'disconnected.bad-peer-handshake': 'bad-handshake',
  'disconnected.handshake-timeout': 'timeout',
  'ignored.malformed-handshake': 'malformed',
  'ignored.second-handshake': 'second-handshake',
  'nick-auth.wrong-directory-id': 'nick-auth-wrong-directory-id',
};

/** The metrics registry of one daemon. */
export class DaemonMetrics {
  readonly registry = new client.Registry();
  readonly #directoryReconnects: client.Counter;
  readonly #naclSessions: client.Counter<'side'>;

  constructor(source: MetricsSource, version: string) {
    const registry = this.registry;
    client.collectDefaultMetrics({ register: registry, prefix: 'onionmc_' });
    new client.Gauge({
      name: 'onionmc_info',
      help: 'Always 1; the labels say what runs',
      labelNames: ['version', 'role'],
      registers: [registry],
      collect() {
        this.reset();
        this.set({ version, role: source.role() ?? 'starting' }, 1);
      },
    });
    new client.Gauge({
      name: 'onionmc_uptime_seconds',
      help: 'Seconds since the daemon started',
      registers: [registry],
      collect() {
        this.set(source.uptimeSeconds());
      },
    });
    new client.Gauge({
      name: 'onionmc_peers',
      help: 'Connections by role (maker, taker, directory, peer) and state',
      labelNames: ['role', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const peer of source.peers()) this.inc({ role: peer.role, state: peer.state });
      },
    });
    counterFamilies(registry, source);
    this.#directoryReconnects = new client.Counter({
      name: 'onionmc_directory_reconnects_total',
      help: 'Directory links handshaked again after they were lost',
      registers: [registry],
    });
    this.#naclSessions = new client.Counter({
      name: 'onionmc_nacl_sessions_total',
      help: 'End-to-end NaCl sessions started (maker: !fill received; taker: !pubkey received)',
      labelNames: ['side'],
      registers: [registry],
    });
  }

  /** Counts a directory link handshaked again after it was lost. */
  directoryReconnected(): void {
    this.#directoryReconnects.inc();
  }

  /** Counts an end-to-end session started on `side`. */
  naclSessionStarted(side: 'maker' | 'taker'): void {
    this.#naclSessions.inc({ side });
  }

  /** The Prometheus text exposition and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * Registers the families read from the node's counters. prom-client counters only go up, so each
 * scrape adds the difference since the last one (the node's counters are monotonic too).
 */
function counterFamilies(registry: client.Registry, source: MetricsSource): void {
  const seen = new Map<string, number>();
  const messages = new client.Counter({
    name: 'onionmc_messages_total',
    help: 'Messages received (in) and sent (out) by type; route direct or directory for out',
    labelNames: ['direction', 'type', 'route'],
    registers: [registry],
    // Registered first of the families below, so its collect updates all of them per scrape.
    collect() {
      update();
    },
  });
  const relayed = new client.Counter({
    name: 'onionmc_relayed_total',
    help: 'Messages a directory node relayed, by type (pubmsg-copies: one per recipient)',
    labelNames: ['type'],
    registers: [registry],
  });
  const dropped = new client.Counter({
    name: 'onionmc_dropped_total',
    help: 'Messages dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const handshakes = new client.Counter({
    name: 'onionmc_handshakes_total',
    help: 'Handshakes accepted and refused, by reason',
    labelNames: ['result', 'reason'],
    registers: [registry],
  });
  const other = new client.Counter({
    name: 'onionmc_node_events_total',
    help: 'Every other counter of the node, by name',
    labelNames: ['name'],
    registers: [registry],
  });
  const update = (): void => {
    for (const [name, value] of Object.entries(source.counters())) {
      const delta = value - (seen.get(name) ?? 0);
      if (delta <= 0) continue;
      seen.set(name, value);
      const [group = '', ...rest] = name.split('.');
      const tail = rest.join('.');
      const refusal = HANDSHAKE_REFUSALS[name];
      if (name === 'handshake.accepted') handshakes.inc({ result: 'accepted', reason: '' }, delta);
      else if (refusal !== undefined) handshakes.inc({ result: 'refused', reason: refusal }, delta);
      else if (group === 'received')
        messages.inc({ direction: 'in', type: tail, route: '' }, delta);
      else if (group === 'sent') {
        const [type = '', route = ''] = tail.split('.');
        messages.inc({ direction: 'out', type, route }, delta);
      } else if (group === 'relayed') relayed.inc({ type: tail }, delta);
      else if (group === 'dropped') dropped.inc({ reason: tail }, delta);
      else other.inc({ name }, delta);
    }
  };
}
