// Our partitioner must place keys exactly where Kafka's Java-compatible default partitioner does.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from './partitioner.js';

const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer) => number;

describe('partitionForKey', () => {
  it('agrees with the kafkajs (Java-compatible) murmur2 for keys of every length', () => {
    for (let len = 0; len < 70; len++) {
      const key = Array.from({ length: len }, (_, i) => String.fromCharCode(33 + ((i * 7 + len) % 90))).join('');
      expect(murmur2(Buffer.from(key))).toBe(kafkajsMurmur2(Buffer.from(key)));
    }
    expect(murmur2(Buffer.from('instance-ß-😀'))).toBe(kafkajsMurmur2(Buffer.from('instance-ß-😀')));
  });

  it('spreads keys over all partitions', () => {
    const seen = new Set([...Array(200).keys()].map((i) => partitionForKey(`key-${i}`, 8)));
    expect(seen.size).toBe(8);
  });
});
