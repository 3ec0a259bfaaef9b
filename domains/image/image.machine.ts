// The image lifecycle with Glance v2's statuses (shared/reference §6): queued on creation, saving
// while its data is uploaded, active once the data is stored (a failed upload goes back to
// queued, a killed one to killed), deactivated and back, deleted. The status is the machine's
// state (and the resource's `status`, kept equal); ImageStatusChanged moves it, ImageDeleted ends
// it. IMAGE_RULES says which command runs in which status; imageRefusal states the other rules
// (formats before the upload, protected, members only of shared images) for the guard and the
// explanation. Glance's uploading/importing (interoperable import) and pending_delete (delayed
// delete) are not built.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import { failedPrecondition, invalidArgument, type Rejection } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import { commandsAllowed, liveStates, statusRefusal, statusTransitions, type Ev, type StatusRules } from '../block/status-rules.js';
import { DEFAULT_VISIBILITY, IMAGE_MEMBER_QUOTA, IMAGE_STATUSES, noData, type Image, type ImageMember, type ImageStatus } from './image.types.js';
import { clipReason, imageFieldProblem } from './image.validation.js';

export interface ImageContext {
  image: Image | null;
  status: ImageStatus;
  /** Its members by project id (kept when the image stops being shared, and counted for nothing then). */
  members: Record<string, ImageMember>;
}

const LIVE = IMAGE_STATUSES;

export const IMAGE_RULES: StatusRules<ImageStatus> = {
  statuses: LIVE,
  allowed: {
    UpdateImage: LIVE,
    StartImageUpload: ['queued'],
    CompleteImageUpload: ['saving'],
    FailImageUpload: ['saving'],
    // Glance's table has only saving -> killed; queued -> killed is this project's (a server snapshot that failed before its upload).
    KillImage: ['queued', 'saving'],
    // Already deactivated (active): accepted with no events, as Glance's no-op.
    DeactivateImage: ['active', 'deactivated'],
    ReactivateImage: ['deactivated', 'active'],
    DeleteImage: LIVE,
    AddImageMember: LIVE,
    UpdateImageMember: LIVE,
    RemoveImageMember: LIVE,
  },
};

/** The commands an image takes in this status (CreateImage aside), in the table's order. */
export const imageCommandsAllowed = (status: ImageStatus): string[] => commandsAllowed(IMAGE_RULES, status);

const MEMBER_COMMANDS = new Set(['AddImageMember', 'UpdateImageMember', 'RemoveImageMember']);
const FORMATS = [
  ['diskFormat', 'disk_format'],
  ['containerFormat', 'container_format'],
] as const;
const isAdmin = (e: Ev) => Boolean(e.meta?.actor.roles.includes('admin'));

/** Why this command may not run on this image (undefined: it may). */
export function imageRefusal(context: ImageContext, event: Ev): Rejection | undefined {
  const fields = imageFieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'CreateImage') {
    if (event.meta && event.image.id !== id) return invalidArgument('image.id', `"${event.image.id}" is not the image's id "${id}"`);
    return undefined;
  }
  const byStatus = statusRefusal(IMAGE_RULES, 'image', context.status, event);
  if (byStatus) return byStatus;
  const image = context.image!;
  const status = context.status;
  switch (event.type) {
    case 'UpdateImage': {
      const fixed = FORMATS.filter(([f]) => (event.updateMask as string[]).includes(f)).map(([, s]) => s);
      if (fixed.length > 0 && status !== 'queued') {
        return failedPrecondition(status, `UpdateImage is not allowed to change ${fixed.join(' and ')}: image ${id} is ${status} (only while queued)`);
      }
      return undefined;
    }
    case 'StartImageUpload': {
      const missing = FORMATS.filter(([f]) => image[f] === '').map(([, s]) => s);
      if (missing.length > 0) return failedPrecondition(status, `StartImageUpload is not allowed: image ${id} has no ${missing.join(' and ')} (set it while queued, before the upload)`);
      return undefined;
    }
    case 'DeleteImage':
      if (image.protected) return failedPrecondition(status, `DeleteImage is not allowed: image ${id} is protected (set protected to false first)`);
      return undefined;
  }
  if (MEMBER_COMMANDS.has(event.type)) {
    if (image.visibility !== 'shared') return failedPrecondition(status, `${event.type} is not allowed: image ${id} has visibility ${image.visibility} (only shared images have members)`);
    const project = event.memberProjectId as string;
    const member = context.members[project];
    if (event.type === 'AddImageMember') {
      if (project === image.owner) return invalidArgument('member_project_id', `project ${project} owns image ${id}; the owner cannot be a member`);
      if (member) return { code: 'ALREADY_EXISTS', message: `project ${project} is already a member of image ${id}` };
      if (Object.keys(context.members).length >= IMAGE_MEMBER_QUOTA) return { code: 'RESOURCE_EXHAUSTED', message: `image ${id} has ${IMAGE_MEMBER_QUOTA} members, the most it may have (image_member_quota)` };
      return undefined;
    }
    if (!member) return { code: 'NOT_FOUND', message: `member_project_id: project ${project} is not a member of image ${id}` };
    // Glance: only the member itself (or an admin) accepts or rejects; the owner may not.
    if (event.type === 'UpdateImageMember' && event.meta && !isAdmin(event) && event.meta.actor.projectId !== project) {
      return { code: 'PERMISSION_DENIED', message: `only project ${project} may set its membership status of image ${id}` };
    }
  }
  return undefined;
}

const allowed = ({ context, event }: { context: ImageContext; event: Ev }) => imageRefusal(context, event) === undefined;
const command = (make: (c: ImageContext, e: Ev) => Record<string, unknown>[]) => ({
  guard: allowed,
  actions: enqueueActions(({ context, event, enqueue }: { context: ImageContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  }),
});
const moveTo = (c: ImageContext, e: Ev, status: ImageStatus, reason = '') =>
  c.status === status ? [] : [{ type: 'ImageStatusChanged', status, previousStatus: c.status, reason, updatedAtMs: e.meta!.issuedAtMs }];

const unique = (tags: readonly string[] | undefined) => [...new Set(tags ?? [])];

/** An image with every field present (the proto3 defaults where a command left one out), tags unique. */
const normal = (image: Image): Image => ({
  ...image,
  name: image.name ?? '',
  diskFormat: image.diskFormat ?? '',
  containerFormat: image.containerFormat ?? '',
  minDisk: image.minDisk ?? 0,
  minRam: image.minRam ?? 0,
  protected: Boolean(image.protected),
  osHidden: Boolean(image.osHidden),
  tags: unique(image.tags),
  properties: { ...(image.properties ?? {}) },
});

/** The image CreateImage makes: queued, its defaults filled, its times the command's, no data yet. */
const created = (e: Ev): Image => {
  const given = e.image as Image;
  const at = e.meta!.issuedAtMs;
  return { ...normal(given), status: 'queued', visibility: given.visibility || DEFAULT_VISIBILITY, ...noData(), createdAtMs: at, updatedAtMs: at };
};

const memberOf = (e: Ev, m: Partial<ImageMember>): ImageMember => ({
  memberProjectId: e.memberProjectId,
  status: 'pending',
  createdAtMs: e.meta!.issuedAtMs,
  ...m,
  updatedAtMs: e.meta!.issuedAtMs,
});

const COMMANDS: Record<string, unknown> = {
  UpdateImage: command((c, e) => {
    const next = applyMask(c.image as never, e.image, e.updateMask) as unknown as Image;
    return [{ type: 'ImageUpdated', image: { ...normal(next), updatedAtMs: e.meta!.issuedAtMs } }];
  }),
  StartImageUpload: command((c, e) => [{ type: 'ImageUploadStarted', location: e.location }, ...moveTo(c, e, 'saving')]),
  CompleteImageUpload: command((c, e) => [
    { type: 'ImageActivated', size: e.size, virtualSize: e.virtualSize, checksum: e.checksum, osHashAlgo: e.osHashAlgo, osHashValue: e.osHashValue, location: e.location },
    ...moveTo(c, e, 'active'),
  ]),
  FailImageUpload: command((c, e) => [{ type: 'ImageUploadFailed', reason: clipReason(e.reason), location: c.image!.location }, ...moveTo(c, e, 'queued', clipReason(e.reason))]),
  KillImage: command((c, e) => moveTo(c, e, 'killed', clipReason(e.reason))),
  DeactivateImage: command((c, e) => moveTo(c, e, 'deactivated')),
  ReactivateImage: command((c, e) => moveTo(c, e, 'active')),
  DeleteImage: command((c, e) => [{ type: 'ImageDeleted', image: c.image, deletedAtMs: e.meta!.issuedAtMs }]),
  AddImageMember: command((_c, e) => [{ type: 'ImageMemberAdded', member: memberOf(e, {}) }]),
  UpdateImageMember: command((c, e) => [{ type: 'ImageMemberUpdated', member: memberOf(e, { createdAtMs: c.members[e.memberProjectId].createdAtMs, status: e.status }) }]),
  RemoveImageMember: command((c, e) => [{ type: 'ImageMemberRemoved', member: c.members[e.memberProjectId] }]),
};

type Assign = { context: ImageContext; event: Ev };
const withImage = (patch: (event: Ev) => Partial<Image>) => assign(({ context, event }: Assign) => ({ image: { ...context.image!, ...patch(event) } }));
const setMember = assign(({ context, event }: Assign) => ({ members: { ...context.members, [event.member.memberProjectId]: event.member as ImageMember } }));

const EVENTS: Record<string, unknown> = {
  ImageStatusChanged: statusTransitions(LIVE, (status) =>
    assign(({ context, event }: Assign) => ({ status, image: { ...context.image!, status, updatedAtMs: event.updatedAtMs as number } })),
  ),
  ImageUpdated: { actions: assign(({ event }: Assign) => ({ image: event.image as Image })) },
  ImageUploadStarted: { actions: withImage((e) => ({ location: e.location })) },
  ImageActivated: {
    actions: withImage((e) => ({ size: e.size, virtualSize: e.virtualSize, checksum: e.checksum, osHashAlgo: e.osHashAlgo, osHashValue: e.osHashValue, location: e.location })),
  },
  ImageUploadFailed: { actions: withImage(() => ({ location: '' })) },
  ImageMemberAdded: { actions: setMember },
  ImageMemberUpdated: { actions: setMember },
  ImageMemberRemoved: {
    actions: assign(({ context, event }: Assign) => {
      const { [event.member.memberProjectId as string]: _gone, ...members } = context.members;
      return { members };
    }),
  },
  ImageDeleted: { target: 'deleted' },
};

export const imageMachine = setup({}).createMachine({
  id: 'image',
  initial: 'absent',
  context: { image: null, status: 'queued', members: {} } as ImageContext,
  states: {
    absent: {
      on: {
        CreateImage: command((_c, e) => [{ type: 'ImageCreated', image: created(e) }]),
        ImageCreated: {
          target: 'queued',
          actions: assign(({ event }: { event: Ev }) => ({ image: event.image as Image, status: 'queued' as ImageStatus, members: {} })),
        },
      },
    },
    ...liveStates(IMAGE_RULES, COMMANDS, EVENTS),
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const IMAGE_COMMANDS = ['CreateImage', ...Object.keys(IMAGE_RULES.allowed)] as const;
export const IMAGE_EVENTS = [
  'ImageCreated',
  'ImageUpdated',
  'ImageUploadStarted',
  'ImageActivated',
  'ImageUploadFailed',
  'ImageStatusChanged',
  'ImageDeleted',
  'ImageMemberAdded',
  'ImageMemberUpdated',
  'ImageMemberRemoved',
] as const;
