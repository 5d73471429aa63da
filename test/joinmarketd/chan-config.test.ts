import { describe, expect, it } from 'vitest';
import { decodeArguments } from '../../src/amp/commands.js';
import { ChanConfigError, parseChanConfigs } from '../../src/joinmarketd/chan-config.js';
import { loadAmpTranscript } from '../amp/transcript.js';

function problems(value: unknown): readonly string[] {
  try {
    parseChanConfigs(value as never);
  } catch (err) {
    if (err instanceof ChanConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('chan_configs', () => {
  it('reads the [MESSAGING:onion] sections of the transcript', () => {
    const inits = loadAmpTranscript().filter((b) => b.what === 'JMInit');
    const [maker, taker] = inits.map((b) =>
      parseChanConfigs(decodeArguments('JMInit', b.box).chan_configs),
    );
    expect(maker).toMatchObject({
      sectionName: 'MESSAGING:onion',
      directoryNodes: ['127.0.0.1:5322'],
      socks5Port: 9050,
      torControlPort: 9051,
      onionServingPort: 5323,
      serving: true,
      btcnet: 'testnet',
      regtestCount: '1,1',
    });
    expect(taker?.serving).toBe(false);
  });

  it('refuses IRC (explicit or without type), several onion sections and bad values, listing all', () => {
    const onion = { type: 'onion', directory_nodes: 'a:1', 'section-name': 'MESSAGING:onion' };
    expect(problems([{ type: 'irc', 'section-name': 'MESSAGING:server1' }, onion])[0]).toMatch(
      /\[MESSAGING:server1\] is of type irc/,
    );
    expect(problems([{ 'section-name': 'MESSAGING:server2' }])[0]).toMatch(/irc \(no type key\)/);
    expect(problems([onion, onion])[0]).toMatch(/2 onion sections/);
    expect(problems([])).toHaveLength(1);
    expect(problems({})).toHaveLength(1);
    expect(
      problems([{ ...onion, socks5_port: 70000, serving: 'maybe', directory_nodes: '' }]),
    ).toHaveLength(3);
    expect(parseChanConfigs([{ ...onion, socks5_port: '9050', serving: 'True' }])).toMatchObject({
      socks5Port: 9050,
      serving: true,
    });
  });

  it('names a list or object where a string belongs by its kind, however deep it nests', () => {
    // Printing a 32,000-deep value overflowed the stack (a RangeError, not a ChanConfigError).
    let deep: unknown[] = [];
    for (let i = 0; i < 32_000; i++) deep = [deep];
    expect(problems([{ type: 'onion', directory_nodes: deep }])).toEqual([
      'onion: directory_nodes must be a string, got a list',
    ]);
    expect(problems([{ type: 'onion', directory_nodes: 'a:1', socks5_host: {} }])).toEqual([
      'onion: socks5_host must be a string, got an object',
    ]);
  });
});
