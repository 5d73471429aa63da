/** `onionmc run --listen-fd` and socket activation (sd_listen_fds(3)): which fd we accept on. */
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parseListenFd, socketActivationFd } from '../../src/cli/listen-fd.js';

describe('the listening socket handed to onionmc run', () => {
  it('takes fd 3 only when LISTEN_FDS=1 is meant for our pid', () => {
    expect(socketActivationFd({ LISTEN_FDS: '1', LISTEN_PID: '42' }, 42)).toBe(3);
    expect(socketActivationFd({ LISTEN_FDS: '1', LISTEN_PID: '41' }, 42)).toBeUndefined();
    expect(socketActivationFd({ LISTEN_FDS: '1' }, 42)).toBeUndefined();
    expect(socketActivationFd({ LISTEN_FDS: '0', LISTEN_PID: '42' }, 42)).toBeUndefined();
    expect(socketActivationFd({}, 42)).toBeUndefined();
  });

  it('refuses several sockets as a configuration error (exit 2)', () => {
    expect(() => socketActivationFd({ LISTEN_FDS: '2', LISTEN_PID: '42' }, 42)).toThrow(
      ConfigError,
    );
  });

  it('--listen-fd takes a number from 3', () => {
    expect(parseListenFd('3')).toBe(3);
    for (const bad of ['0', '2', '-1', 'x', '3.5', ''])
      expect(() => parseListenFd(bad)).toThrow(InvalidArgumentError);
  });
});
