/**
 * The listening socket `onionmc run` accepts peers on when it is handed one instead of binding
 * onion_serving_host:port: `--listen-fd N`, or systemd socket activation (sd_listen_fds(3)).
 */
import { InvalidArgumentError } from 'commander';
import { ConfigError } from '../errors.js';

/** Parses `--listen-fd`: a file descriptor number, 3 or more (0-2 are stdio). */
export function parseListenFd(value: string): number {
  const fd = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(fd) || fd < 3)
    throw new InvalidArgumentError('a file descriptor number, 3 or more');
  return fd;
}

/**
 * The listening socket systemd passed us (socket activation, sd_listen_fds(3)): fd 3 when
 * `LISTEN_FDS` is 1 and `LISTEN_PID` is our pid; undefined when not socket-activated.
 * @throws ConfigError (exit 2) when we were passed more than one socket.
 */
export function socketActivationFd(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
): number | undefined {
  if (env.LISTEN_PID !== String(pid) || env.LISTEN_FDS === undefined) return undefined;
  if (env.LISTEN_FDS === '0') return undefined;
  if (env.LISTEN_FDS !== '1')
    throw new ConfigError([
      `socket activation passed LISTEN_FDS=${env.LISTEN_FDS} sockets; onionmc takes exactly one (its onion serving port)`,
    ]);
  return 3;
}
