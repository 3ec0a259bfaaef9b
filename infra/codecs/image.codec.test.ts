// The image codec carries exactly what the decider consumes: every command and event of the image
// aggregate, produced by driving the real decider through realistic histories, survives encode ->
// decode deep-equal, and folding the decoded events gives the state the originals give. Bad fields
// are refused at decode, named.
import { describe, expect, it } from 'vitest';
import { imageAggregate, imageAggregates } from '../../domains/image/image.deciders.js';
import type { Message } from '../../domains/kernel/decider.js';
import type { MachineState } from '../../domains/kernel/machine-decider.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { testContext } from '../../domains/kernel/specification.js';
import { IMAGE_PROTO_PACKAGE, imageCodecFor, imageDefinitions, imageEventTypes } from './image.codec.js';

type M = Message & Record<string, any>;

const admin = { userId: 'admin', projectId: 'p0', roles: ['admin', 'member', 'reader'] };
const seen = new Map<string, { commands: Set<string>; events: Set<string> }>();

/** Runs commands in order against one aggregate through the codec; returns both folds. */
function drive(aggregateType: string, aggregateId: string, commands: M[]): { original: MachineState; decoded: MachineState } {
  const { decider } = imageAggregate(aggregateType);
  const codec = imageCodecFor(aggregateType);
  const record = seen.get(aggregateType) ?? { commands: new Set(), events: new Set() };
  seen.set(aggregateType, record);
  let original = decider.initialState;
  let decoded = decider.initialState;
  commands.forEach((command, i) => {
    const wire = codec.decodeCommand(command.type, codec.encodeCommand(command)) as M;
    expect(wire, `${command.type} after the wire`).toStrictEqual(command);
    record.commands.add(command.type);
    const context = testContext({ aggregateId, version: i, actor: admin, issuedAtMs: 1_767_225_600_000 + i });
    const want = decider.decide(original, command, context);
    const got = decider.decide(decoded, wire, context);
    if (!('events' in want)) throw new Error(`${command.type} (#${i}) refused: ${want.rejection.message}`);
    expect(got, `${command.type}: deciding the decoded command`).toStrictEqual(want);
    for (const event of want.events as M[]) {
      const back = codec.decodeEvent(event.type, codec.encodeEvent(event)) as M;
      expect(back, `${event.type} after the wire`).toStrictEqual(event);
      record.events.add(event.type);
      original = decider.evolve(original, event);
      decoded = decider.evolve(decoded, back);
    }
    expect({ value: decoded.value, context: decoded.context }, `state after ${command.type}`).toStrictEqual({ value: original.value, context: original.context });
    const snap = codec.decodeState(codec.encodeState(decoded));
    expect(snap).toStrictEqual({ value: decoded.value, context: decoded.context });
  });
  return { original, decoded };
}

const ID = '6f1c3b2a-9d4e-4c5f-8a7b-0e1d2c3b4a59';
const image = {
  id: ID, name: 'debian-12', owner: 'p1', status: '', visibility: 'shared', diskFormat: '', containerFormat: '',
  minDisk: 2, minRam: 512, protected: false, osHidden: false, tags: ['debian', 'lts'], properties: { hw_disk_bus: 'virtio', hw_cpu_cores: '2' },
  size: 0, virtualSize: 0, checksum: '', osHashAlgo: '', osHashValue: '', createdAtMs: 0, updatedAtMs: 0, location: '',
};
const upload = {
  type: 'CompleteImageUpload', size: 5_368_709_120, virtualSize: 10_737_418_240, checksum: 'd41d8cd98f00b204e9800998ecf8427e', osHashAlgo: 'sha512',
  osHashValue: 'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e',
  location: 'AUTH_glance/images/6f1c3b2a-9d4e-4c5f-8a7b-0e1d2c3b4a59',
};

describe('image codec', () => {
  it('carries an image through formats, a failed upload, activation, deactivation, members, protection and deletion', () => {
    const { decoded } = drive('image', ID, [
      { type: 'CreateImage', image },
      { type: 'UpdateImage', image: { ...image, diskFormat: 'qcow2', containerFormat: 'bare', properties: {} }, updateMask: ['diskFormat', 'containerFormat', 'properties'] },
      { type: 'StartImageUpload', location: upload.location },
      { type: 'FailImageUpload', reason: 'connection reset\nby peer' },
      { type: 'StartImageUpload', location: upload.location },
      upload,
      { type: 'DeactivateImage' },
      { type: 'ReactivateImage' },
      { type: 'AddImageMember', memberProjectId: 'p2' },
      { type: 'UpdateImageMember', memberProjectId: 'p2', status: 'accepted' },
      { type: 'AddImageMember', memberProjectId: 'p3' },
      { type: 'RemoveImageMember', memberProjectId: 'p3' },
      { type: 'UpdateImage', image: { ...image, protected: true, osHidden: true, tags: [], visibility: 'private', name: '' }, updateMask: ['protected', 'osHidden', 'tags', 'visibility', 'name'] },
      { type: 'UpdateImage', image: { ...image, protected: false }, updateMask: ['protected'] },
      { type: 'DeleteImage' },
    ]);
    expect(decoded.value).toBe('deleted');
    const killed = drive('image', '0b3a8d61-1c55-4f57-9a0e-5b7f6c1e2d3a', [
      { type: 'CreateImage', image: { ...image, id: '0b3a8d61-1c55-4f57-9a0e-5b7f6c1e2d3a', visibility: '', diskFormat: 'raw', containerFormat: 'bare' } },
      { type: 'KillImage', reason: 'server snapshot failed' },
    ]);
    expect(killed.decoded.value).toBe('killed');
    expect((killed.decoded.context as any).image.visibility).toBe('shared');
  });

  it('has seen every command and event type of the image aggregate (runs last)', () => {
    for (const a of imageAggregates) {
      const s = seen.get(a.aggregateType);
      expect([...(s?.commands ?? [])].sort(), `${a.aggregateType} commands`).toEqual([...a.commandTypes].sort());
      expect([...(s?.events ?? [])].sort(), `${a.aggregateType} events`).toEqual([...a.eventTypes].sort());
    }
  });
});

describe('image codec: refusals', () => {
  const refusal = (command: M) => {
    const codec = imageCodecFor('image');
    try {
      codec.decodeCommand(command.type, codec.encodeCommand(command));
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
      return { field: (e as InvalidArgumentError).field, message: (e as Error).message };
    }
    throw new Error(`${command.type} was accepted`);
  };

  it('refuses bad fields at decode, naming them', () => {
    expect(refusal({ type: 'CreateImage', image: { ...image, diskFormat: 'qcow3' } })).toMatchObject({ field: 'image.disk_format' });
    expect(refusal({ type: 'CreateImage', image: { ...image, name: 'x'.repeat(256) } })).toMatchObject({ field: 'image.name', message: expect.stringContaining('at most 255') });
    expect(refusal({ type: 'CreateImage', image: { ...image, minDisk: -1 } })).toMatchObject({ field: 'image.min_disk' });
    expect(refusal({ type: 'CreateImage', image: { ...image, properties: { owner: 'p2' } } })).toMatchObject({ field: 'image.properties.owner' });
    expect(refusal({ type: 'UpdateImage', image, updateMask: ['owner'] })).toMatchObject({ field: 'image.owner', message: expect.stringContaining('cannot be changed') });
    expect(refusal({ ...upload, checksum: 'nope' })).toMatchObject({ field: 'checksum' });
    expect(refusal({ type: 'UpdateImageMember', memberProjectId: 'p2', status: 'yes' })).toMatchObject({ field: 'status' });
    expect(refusal({ type: 'CreateImage' })).toMatchObject({ field: 'image', message: 'image: is required' });
  });

  it('lists its aggregate and distinct event types in strata.image.v1', () => {
    expect(IMAGE_PROTO_PACKAGE).toBe('strata.image.v1');
    expect(imageDefinitions.map((d) => d.decider.aggregateType)).toEqual(['image']);
    expect(new Set(imageEventTypes).size).toBe(imageEventTypes.length);
    expect(() => imageCodecFor('volume')).toThrow(/no image aggregate/);
  });
});
