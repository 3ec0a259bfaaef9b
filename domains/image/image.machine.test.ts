// The image lifecycle as Glance v2 runs it, through the decider: every (status, command) pair
// against the table written out here, then the upload, formats, protected, members, and the
// visibility helpers.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { testContext } from '../kernel/specification.js';
import { imageAggregate, imageAggregates } from './image.deciders.js';
import { IMAGE_COMMANDS, IMAGE_RULES, imageCommandsAllowed } from './image.machine.js';
import { IMAGE_MEMBER_QUOTA, IMAGE_STATUSES, imageUsableBy, imageVisibleTo, type Image, type ImageStatus, type MemberStatus } from './image.types.js';

type M = Message & Record<string, any>;
const imageDecider = imageAggregate('image').decider;

const ID = '6f1c3b2a-9d4e-4c5f-8a7b-0e1d2c3b4a59';
const T0 = 1_767_225_600_000;
const admin = { userId: 'admin', projectId: 'p0', roles: ['admin', 'member'] };
const image: Image = {
  id: ID, name: 'debian-12', owner: 'p1', status: 'queued', visibility: 'shared', diskFormat: 'qcow2', containerFormat: 'bare',
  minDisk: 2, minRam: 512, protected: false, osHidden: false, tags: ['debian'], properties: { hw_disk_bus: 'virtio' },
  size: 0, virtualSize: 0, checksum: '', osHashAlgo: '', osHashValue: '', createdAtMs: T0, updatedAtMs: T0, location: '',
};
const MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
const SHA512 = 'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';
const LOC = 'AUTH_glance/images/6f1c3b2a';
const data = { size: 1024, virtualSize: 4096, checksum: MD5, osHashAlgo: 'sha512', osHashValue: SHA512, location: LOC };
const member = (p: string, status: MemberStatus = 'pending') => ({ memberProjectId: p, status, createdAtMs: T0, updatedAtMs: T0 });
const moved = (status: string, previousStatus: string, reason = ''): M => ({ type: 'ImageStatusChanged', status, previousStatus, reason, updatedAtMs: T0 });

const queued: M[] = [{ type: 'ImageCreated', image }, { type: 'ImageMemberAdded', member: member('p2') }];
const saving = [...queued, { type: 'ImageUploadStarted', location: LOC }, moved('saving', 'queued')];
const active = [...saving, { type: 'ImageActivated', ...data }, moved('active', 'saving')];
const AT: Record<ImageStatus, M[]> = {
  queued,
  saving,
  active,
  deactivated: [...active, moved('deactivated', 'active')],
  killed: [...saving, moved('killed', 'saving', 'snapshot failed')],
};

const LIVE = IMAGE_STATUSES;
/** Glance's table (§6) restricted to the statuses built, written out here. */
const LEGAL: Record<string, readonly string[]> = {
  UpdateImage: LIVE,
  StartImageUpload: ['queued'],
  CompleteImageUpload: ['saving'],
  FailImageUpload: ['saving'],
  KillImage: ['queued', 'saving'],
  DeactivateImage: ['active', 'deactivated'],
  ReactivateImage: ['active', 'deactivated'],
  DeleteImage: LIVE,
  AddImageMember: LIVE,
  UpdateImageMember: LIVE,
  RemoveImageMember: LIVE,
};
const COMMAND: Record<string, M> = {
  UpdateImage: { type: 'UpdateImage', image: { ...image, name: 'debian-12-genericcloud' }, updateMask: ['name'] },
  StartImageUpload: { type: 'StartImageUpload', location: LOC },
  CompleteImageUpload: { type: 'CompleteImageUpload', ...data },
  FailImageUpload: { type: 'FailImageUpload', reason: 'connection reset' },
  KillImage: { type: 'KillImage', reason: 'snapshot failed' },
  DeactivateImage: { type: 'DeactivateImage' },
  ReactivateImage: { type: 'ReactivateImage' },
  DeleteImage: { type: 'DeleteImage' },
  AddImageMember: { type: 'AddImageMember', memberProjectId: 'p3' },
  UpdateImageMember: { type: 'UpdateImageMember', memberProjectId: 'p2', status: 'accepted' },
  RemoveImageMember: { type: 'RemoveImageMember', memberProjectId: 'p2' },
};
const OUTCOME: Record<string, (s: ImageStatus) => { events: string[]; to: string }> = {
  UpdateImage: (s) => ({ events: ['ImageUpdated'], to: s }),
  StartImageUpload: () => ({ events: ['ImageUploadStarted', 'ImageStatusChanged'], to: 'saving' }),
  CompleteImageUpload: () => ({ events: ['ImageActivated', 'ImageStatusChanged'], to: 'active' }),
  FailImageUpload: () => ({ events: ['ImageUploadFailed', 'ImageStatusChanged'], to: 'queued' }),
  KillImage: () => ({ events: ['ImageStatusChanged'], to: 'killed' }),
  DeactivateImage: (s) => ({ events: s === 'deactivated' ? [] : ['ImageStatusChanged'], to: 'deactivated' }),
  ReactivateImage: (s) => ({ events: s === 'active' ? [] : ['ImageStatusChanged'], to: 'active' }),
  DeleteImage: () => ({ events: ['ImageDeleted'], to: 'deleted' }),
  AddImageMember: (s) => ({ events: ['ImageMemberAdded'], to: s }),
  UpdateImageMember: (s) => ({ events: ['ImageMemberUpdated'], to: s }),
  RemoveImageMember: (s) => ({ events: ['ImageMemberRemoved'], to: s }),
};

const decide = (history: M[], command: M, actor = admin, issuedAtMs = T0 + 1000) =>
  imageDecider.decide(fold(imageDecider, history), command, testContext({ aggregateId: ID, version: history.length, actor, issuedAtMs }));
const events = (d: ReturnType<typeof decide>): M[] => {
  if (!('events' in d)) throw new Error(d.rejection.message);
  return d.events as M[];
};
const after = (history: M[], command: M, actor = admin) => fold(imageDecider, events(decide(history, command, actor)), fold(imageDecider, history));
const ctx = (history: M[]) => fold(imageDecider, history).context as any;

describe('image: every (status, command) pair', () => {
  it('covers every command, and the fixtures reach their statuses', () => {
    expect(imageAggregates.map((a) => a.aggregateType)).toEqual(['image']);
    expect(Object.keys(COMMAND).sort()).toEqual(IMAGE_COMMANDS.filter((c) => c !== 'CreateImage').sort());
    expect(Object.keys(LEGAL).sort()).toEqual(Object.keys(IMAGE_RULES.allowed).sort());
    for (const s of LIVE) {
      expect(fold(imageDecider, AT[s]).value).toBe(s);
      expect(ctx(AT[s]).image.status).toBe(s);
    }
  });

  for (const status of LIVE) {
    for (const type of Object.keys(COMMAND)) {
      const legal = LEGAL[type].includes(status);
      it(`${status}: ${type} is ${legal ? 'legal' : 'refused'}`, () => {
        const d = decide(AT[status], COMMAND[type]);
        if (legal) {
          const want = OUTCOME[type](status);
          expect(events(d).map((e) => e.type)).toEqual(want.events);
          const next = fold(imageDecider, events(d), fold(imageDecider, AT[status]));
          expect(next.value).toBe(want.to);
          if (want.to !== 'deleted') expect((next.context as any).image.status).toBe(want.to);
        } else {
          expect(d).toEqual({
            rejection: { code: 'FAILED_PRECONDITION', state: status, message: `${type} is not allowed: image ${ID} is ${status} (allowed: ${LEGAL[type].length === LIVE.length ? 'any status' : IMAGE_RULES.allowed[type].join(', ')})` },
          });
        }
      });
    }
  }

  it('is NOT_FOUND before creation and after deletion; a second creation is ALREADY_EXISTS; allowedCommands is the table', () => {
    const gone = [...AT.active, { type: 'ImageDeleted', image: { ...image, ...data, status: 'active' }, deletedAtMs: T0 }];
    expect(fold(imageDecider, gone).value).toBe('deleted');
    for (const type of Object.keys(COMMAND)) {
      expect(decide([], COMMAND[type])).toEqual({ rejection: { code: 'NOT_FOUND', message: `image ${ID} does not exist` } });
      expect(decide(gone, COMMAND[type])).toEqual({ rejection: { code: 'NOT_FOUND', message: `image ${ID} does not exist` } });
    }
    expect(decide(AT.active, { type: 'CreateImage', image })).toMatchObject({ rejection: { code: 'ALREADY_EXISTS' } });
    for (const s of LIVE) expect(imageDecider.allowedCommands(fold(imageDecider, AT[s])).sort()).toEqual(imageCommandsAllowed(s).sort());
    expect(imageCommandsAllowed('killed')).toEqual(['UpdateImage', 'DeleteImage', 'AddImageMember', 'UpdateImageMember', 'RemoveImageMember']);
  });
});

describe('image lifecycle', () => {
  it('is created queued with the envelope time, Glance defaults and no data; uploaded; activated', () => {
    const d = decide([], { type: 'CreateImage', image: { ...image, visibility: '', status: '', tags: ['a', 'b', 'a'], createdAtMs: 5, updatedAtMs: 5 } });
    const made = { ...image, visibility: 'shared', tags: ['a', 'b'], createdAtMs: T0 + 1000, updatedAtMs: T0 + 1000 };
    expect(d).toEqual({ events: [{ type: 'ImageCreated', image: made }] });
    const h: M[] = [...events(d)];
    h.push(...events(decide(h, { type: 'StartImageUpload', location: LOC }, admin, T0 + 2000)));
    h.push(...events(decide(h, { type: 'CompleteImageUpload', ...data }, admin, T0 + 3000)));
    expect(h.slice(1)).toEqual([
      { type: 'ImageUploadStarted', location: LOC },
      { type: 'ImageStatusChanged', status: 'saving', previousStatus: 'queued', reason: '', updatedAtMs: T0 + 2000 },
      { type: 'ImageActivated', ...data },
      { type: 'ImageStatusChanged', status: 'active', previousStatus: 'saving', reason: '', updatedAtMs: T0 + 3000 },
    ]);
    expect(ctx(h).image).toEqual({ ...made, ...data, status: 'active', updatedAtMs: T0 + 3000 });
  });

  it('refuses a second CreateImage id, a bad field, naming it', () => {
    expect(decide([], { type: 'CreateImage', image: { ...image, id: '0b3a8d61-1c55-4f57-9a0e-5b7f6c1e2d3a' } })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'image.id' } });
    expect(decide([], { type: 'CreateImage', image: { ...image, diskFormat: 'qcow3' } })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'image.disk_format' } });
    expect(decide(AT.queued, { type: 'UpdateImage', image: { ...image, minRam: -1 }, updateMask: ['minRam'] })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'image.min_ram' } });
  });

  it('resets a failed upload to queued, clearing its location, and can upload again', () => {
    const d = events(decide(AT.saving, { type: 'FailImageUpload', reason: 'x'.repeat(2000) }));
    expect(d[0]).toEqual({ type: 'ImageUploadFailed', reason: `${'x'.repeat(1023)}…`, location: LOC });
    expect(d[1]).toMatchObject({ type: 'ImageStatusChanged', status: 'queued', previousStatus: 'saving' });
    const h = [...AT.saving, ...d];
    expect(ctx(h).image.location).toBe('');
    expect(after(h, { type: 'StartImageUpload', location: `${LOC}-2` }).value).toBe('saving');
  });

  it('needs disk_format and container_format to start an upload, naming the missing one', () => {
    const bare = [{ type: 'ImageCreated', image: { ...image, diskFormat: '', containerFormat: '' } }];
    expect(decide(bare, COMMAND.StartImageUpload)).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'queued', message: `StartImageUpload is not allowed: image ${ID} has no disk_format and container_format (set it while queued, before the upload)` },
    });
    const noContainer = [{ type: 'ImageCreated', image: { ...image, containerFormat: '' } }];
    expect(decide(noContainer, COMMAND.StartImageUpload)).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', message: expect.stringContaining('has no container_format') } });
    const set = after(noContainer, { type: 'UpdateImage', image: { ...image, containerFormat: 'ova' }, updateMask: ['containerFormat'] });
    expect((set.context as any).image.containerFormat).toBe('ova');
    expect(imageDecider.decide(set, COMMAND.StartImageUpload, testContext({ aggregateId: ID, version: 2 }))).toMatchObject({ events: [{ type: 'ImageUploadStarted' }, { type: 'ImageStatusChanged' }] });
  });

  it('changes disk_format and container_format only while queued; other fields in any status', () => {
    expect(decide(AT.active, { type: 'UpdateImage', image: { ...image, diskFormat: 'raw' }, updateMask: ['name', 'diskFormat'] })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'active', message: `UpdateImage is not allowed to change disk_format: image ${ID} is active (only while queued)` },
    });
    const changes = { minDisk: 20, protected: true, osHidden: true, tags: ['x', 'x', 'y'], properties: { hw_cpu_cores: '2' }, visibility: 'public' };
    // Fields outside the mask (name here) and the data fields stay as they were.
    const d = events(decide(AT.deactivated, { type: 'UpdateImage', image: { ...image, ...changes, name: 'ignored' }, updateMask: Object.keys(changes) }));
    expect(d).toEqual([{ type: 'ImageUpdated', image: { ...image, ...data, ...changes, tags: ['x', 'y'], status: 'deactivated', updatedAtMs: T0 + 1000 } }]);
  });

  it('refuses to delete a protected image, naming protected; ImageDeleted carries the image with its location', () => {
    const prot = [...AT.active, { type: 'ImageUpdated', image: { ...ctx(AT.active).image, protected: true } }];
    expect(decide(prot, COMMAND.DeleteImage)).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'active', message: `DeleteImage is not allowed: image ${ID} is protected (set protected to false first)` },
    });
    const unprot = after(prot, { type: 'UpdateImage', image: { ...image, protected: false }, updateMask: ['protected'] });
    const d = imageDecider.decide(unprot, COMMAND.DeleteImage, testContext({ aggregateId: ID, issuedAtMs: T0 + 9 }));
    expect(d).toEqual({ events: [{ type: 'ImageDeleted', image: { ...image, ...data, status: 'active', protected: false, updatedAtMs: T0 + 1000 }, deletedAtMs: T0 + 9 }] });
  });

  it('takes deactivate and reactivate as no-ops when already there', () => {
    expect(decide(AT.deactivated, COMMAND.DeactivateImage)).toEqual({ events: [] });
    expect(decide(AT.active, COMMAND.ReactivateImage)).toEqual({ events: [] });
    expect(after(AT.active, COMMAND.DeactivateImage).value).toBe('deactivated');
    expect(after(AT.deactivated, COMMAND.ReactivateImage).value).toBe('active');
  });

  it('kills a queued or saving image with its reason; a killed image can only be deleted (or updated)', () => {
    expect(decide(AT.queued, COMMAND.KillImage)).toEqual({ events: [{ ...moved('killed', 'queued', 'snapshot failed'), updatedAtMs: T0 + 1000 }] });
    expect(decide(AT.killed, COMMAND.StartImageUpload)).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'killed' } });
  });
});

describe('image members', () => {
  const owner = { userId: 'u1', projectId: 'p1', roles: ['member'] };
  const p2 = { userId: 'u2', projectId: 'p2', roles: ['member'] };

  it('are added pending, accepted by the member only, removed', () => {
    const add = events(decide(AT.active, COMMAND.AddImageMember, owner));
    expect(add).toEqual([{ type: 'ImageMemberAdded', member: { memberProjectId: 'p3', status: 'pending', createdAtMs: T0 + 1000, updatedAtMs: T0 + 1000 } }]);
    expect(Object.keys(ctx([...AT.active, ...add]).members).sort()).toEqual(['p2', 'p3']);
    expect(decide(AT.active, COMMAND.UpdateImageMember, owner)).toEqual({ rejection: { code: 'PERMISSION_DENIED', message: `only project p2 may set its membership status of image ${ID}` } });
    const acc = events(decide(AT.active, COMMAND.UpdateImageMember, p2));
    expect(acc).toEqual([{ type: 'ImageMemberUpdated', member: { memberProjectId: 'p2', status: 'accepted', createdAtMs: T0, updatedAtMs: T0 + 1000 } }]);
    expect(ctx([...AT.active, ...acc]).members.p2.status).toBe('accepted');
    const rm = events(decide(AT.active, COMMAND.RemoveImageMember, owner));
    expect(rm).toEqual([{ type: 'ImageMemberRemoved', member: member('p2') }]);
    expect(ctx([...AT.active, ...rm]).members).toEqual({});
  });

  it('refuses a duplicate (ALREADY_EXISTS), the owner (INVALID_ARGUMENT), an absent member (NOT_FOUND), a 129th member', () => {
    expect(decide(AT.active, { type: 'AddImageMember', memberProjectId: 'p2' })).toEqual({ rejection: { code: 'ALREADY_EXISTS', message: `project p2 is already a member of image ${ID}` } });
    expect(decide(AT.active, { type: 'AddImageMember', memberProjectId: 'p1' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'member_project_id' } });
    for (const type of ['UpdateImageMember', 'RemoveImageMember']) {
      expect(decide(AT.active, { ...COMMAND[type], memberProjectId: 'p9' })).toEqual({ rejection: { code: 'NOT_FOUND', message: `member_project_id: project p9 is not a member of image ${ID}` } });
    }
    const full = [...AT.active, ...Array.from({ length: IMAGE_MEMBER_QUOTA - 1 }, (_, i) => ({ type: 'ImageMemberAdded', member: member(`q${i}`) }))];
    expect(decide(full, { type: 'AddImageMember', memberProjectId: 'p3' })).toMatchObject({ rejection: { code: 'RESOURCE_EXHAUSTED' } });
  });

  it('exist only for shared images: any other visibility is FAILED_PRECONDITION naming it', () => {
    for (const visibility of ['private', 'public', 'community']) {
      const h = [...AT.active, { type: 'ImageUpdated', image: { ...ctx(AT.active).image, visibility } }];
      for (const type of ['AddImageMember', 'UpdateImageMember', 'RemoveImageMember']) {
        expect(decide(h, COMMAND[type])).toEqual({
          rejection: { code: 'FAILED_PRECONDITION', state: 'active', message: `${type} is not allowed: image ${ID} has visibility ${visibility} (only shared images have members)` },
        });
      }
    }
  });
});

describe('image visibility', () => {
  const members = [member('p2', 'accepted'), member('p3', 'pending'), member('p4', 'rejected')];
  const as = (visibility: string, status = 'active') => ({ owner: 'p1', visibility, status }) as Pick<Image, 'owner' | 'visibility' | 'status'>;
  /** [visibility, project] -> [listed, usable] */
  const CASES: [string, string, boolean, boolean][] = [
    ['public', 'p1', true, true], ['public', 'p9', true, true],
    ['community', 'p1', true, true], ['community', 'p9', false, true], ['community', 'p2', false, true],
    ['shared', 'p1', true, true], ['shared', 'p2', true, true], ['shared', 'p3', false, true], ['shared', 'p4', false, true], ['shared', 'p9', false, false],
    ['private', 'p1', true, true], ['private', 'p2', false, false], ['private', 'p9', false, false],
  ];
  for (const [visibility, project, listed, usable] of CASES) {
    it(`${visibility} image, project ${project}: ${listed ? 'listed' : 'not listed'}, ${usable ? 'usable' : 'not usable'}`, () => {
      expect(imageVisibleTo(as(visibility), members, project, false)).toBe(listed);
      expect(imageUsableBy(as(visibility), members, project, false)).toBe(usable);
    });
  }
  it('shows every image to an admin, a deleted one to nobody', () => {
    for (const v of ['public', 'community', 'shared', 'private']) {
      expect(imageVisibleTo(as(v), [], 'p9', true)).toBe(true);
      expect(imageUsableBy(as(v), [], 'p9', true)).toBe(true);
      expect(imageVisibleTo(as(v, 'deleted'), [], 'p1', true)).toBe(false);
      expect(imageUsableBy(as(v, 'deleted'), [], 'p1', true)).toBe(false);
    }
  });
});
