/**
 * Where Tor's control port listens. The config module declares the same shape; TypeScript's
 * structural typing makes the two interchangeable.
 */

/**
 * A control-port address: TCP (`ControlPort 9051` in torrc, docs/protocol.md §8.1 `tor_control_host` /
 * `tor_control_port`) or a unix socket (`ControlSocket /run/tor/control`, written
 * `unix:/run/tor/control` in joinmarket.cfg).
 */
export type Endpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Human-readable form of an endpoint for messages: `127.0.0.1:9051` or `unix:/run/tor/control`. */
export function formatEndpoint(endpoint: Endpoint): string {
  if (endpoint.kind === 'unix') return `unix:${endpoint.path}`;
  return endpoint.host.includes(':')
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
}
