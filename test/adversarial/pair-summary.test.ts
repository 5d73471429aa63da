/**
 * The pair's figures per phase (harness.ts `summarisePairPhases`): the attack window is the
 * attack and its tail together, whichever of them the pair sent in.
 */
import { describe, expect, it } from 'vitest';
import { summarisePairPhases } from './harness.js';

describe('summarisePairPhases', () => {
  it('joins the attack and its tail into the attack window', () => {
    const phases = summarisePairPhases({
      quiet: { sent: 3, latencies: [1, 1, 1] },
      attack: { sent: 2, latencies: [4, 2] },
      'attack-tail': { sent: 3, latencies: [1, 3] },
    });
    expect(phases['attack-window']).toMatchObject({ sent: 5, received: 4, lost: 1, max: 4 });
    expect(phases['attack']).toMatchObject({ sent: 2, lost: 0 });
  });

  it('makes the attack window from the tail alone when the attacker was cut before the pair sent', () => {
    // The node cut the attacker within 31 ms, before the pair's next message (every 50 ms).
    const phases = summarisePairPhases({
      quiet: { sent: 3, latencies: [1, 1, 1] },
      'attack-tail': { sent: 4, latencies: [2, 2, 5] },
    });
    expect(phases['attack']).toBeUndefined();
    expect(phases['attack-window']).toMatchObject({ sent: 4, received: 3, lost: 1, p99: 5 });
  });

  it('makes the attack window from the attack alone when it lasted the whole window', () => {
    const phases = summarisePairPhases({ attack: { sent: 2, latencies: [2, 6] } });
    expect(phases['attack-window']).toMatchObject({ sent: 2, lost: 0, p99: 6, max: 6 });
  });

  it('has no attack window without an attack', () => {
    expect(summarisePairPhases({ quiet: { sent: 1, latencies: [1] } })['attack-window']).toBe(
      undefined,
    );
  });
});
