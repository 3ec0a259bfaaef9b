// The image resources as the domain sees them (Glance v2's, shared/reference §6): the messages of
// proto/strata/image/v1/resources.proto with camelCase fields. Ids are uuids the API draws; times
// come from command envelopes; sizes are bytes, min_disk GiB and min_ram MiB as in Glance.

export const IMAGE_DOMAIN = 'image';

/**
 * An image's statuses, spelled as Glance spells them (the machine's live states; it also has
 * `absent` before creation and `deleted` after). Glance's `uploading` and `importing`
 * (interoperable import) and `pending_delete` (delayed delete) are not built here.
 */
export const IMAGE_STATUSES = ['queued', 'saving', 'active', 'deactivated', 'killed'] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

export const IMAGE_VISIBILITIES = ['public', 'community', 'shared', 'private'] as const;
export type ImageVisibility = (typeof IMAGE_VISIBILITIES)[number];
/** Glance's default visibility since v2.5. */
export const DEFAULT_VISIBILITY: ImageVisibility = 'shared';

/** Glance's default disk_formats. */
export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];
/** Glance's default container_formats. */
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'] as const;
export type ContainerFormat = (typeof CONTAINER_FORMATS)[number];

export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];

/** Glance's [DEFAULT] hashing_algorithm (os_hash_algo). */
export const OS_HASH_ALGO = 'sha512';

/** Glance's default quotas per image: image_member_quota, image_property_quota, image_tag_quota. */
export const IMAGE_MEMBER_QUOTA = 128;
export const IMAGE_PROPERTY_QUOTA = 128;
export const IMAGE_TAG_QUOTA = 128;

export interface Image {
  /** A uuid drawn by the API (the aggregate id). */
  id: string;
  name: string;
  /** The owning project. */
  owner: string;
  /** The machine's state, kept in the resource so the API and events can show it. */
  status: ImageStatus | 'deleted' | '';
  visibility: ImageVisibility | '';
  /** '' until set (it must be set before the upload). */
  diskFormat: DiskFormat | '';
  /** '' until set (it must be set before the upload). */
  containerFormat: ContainerFormat | '';
  /** GiB a server's disk needs to boot it. */
  minDisk: number;
  /** MiB a server needs to boot it. */
  minRam: number;
  protected: boolean;
  osHidden: boolean;
  tags: string[];
  /** Free-form properties; scheduler hints (hw_disk_bus, hw_cpu_cores, ...) among them. */
  properties: Record<string, string>;
  /** Bytes of the uploaded data; 0 until active. */
  size: number;
  /** Bytes of the virtual disk; 0 when unknown. */
  virtualSize: number;
  /** md5 of the data, lower-case hex; '' until active. */
  checksum: string;
  /** 'sha512' once active; '' before. */
  osHashAlgo: string;
  osHashValue: string;
  createdAtMs: number;
  updatedAtMs: number;
  /** Where the data lives in object storage, "<account>/<container>/<object>"; '' for none. */
  location: string;
}

/** A project an image is shared with (only shared images have members). */
export interface ImageMember {
  memberProjectId: string;
  status: MemberStatus;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Core attribute names (as the API spells them): properties may not be named so (Glance: reserved). */
export const RESERVED_PROPERTIES = [
  'id', 'name', 'owner', 'status', 'visibility', 'disk_format', 'container_format', 'min_disk', 'min_ram', 'protected', 'os_hidden',
  'tags', 'size', 'virtual_size', 'checksum', 'os_hash_algo', 'os_hash_value', 'created_at', 'updated_at', 'deleted', 'deleted_at',
  'location', 'locations', 'direct_url', 'self', 'file', 'schema', 'stores', 'is_public', 'members',
] as const;

/** The empty parts of an image before its upload. */
export const noData = () => ({ size: 0, virtualSize: 0, checksum: '', osHashAlgo: '', osHashValue: '', location: '' });

type Listable = Pick<Image, 'owner' | 'visibility' | 'status'>;
type Members = readonly Pick<ImageMember, 'memberProjectId' | 'status'>[];

const isMember = (members: Members, projectId: string, statuses: readonly MemberStatus[]) =>
  members.some((m) => m.memberProjectId === projectId && statuses.includes(m.status));

/**
 * Whether the image is listed for a project (Glance's image list): admins see all; public images
 * are listed for everyone; community images only for their owner (others find them by id or by
 * asking for visibility=community); shared images for the owner and members that accepted;
 * private images for the owner. A deleted image for nobody. os_hidden is a filter of the list
 * query, not of visibility.
 */
export function imageVisibleTo(image: Listable, members: Members, projectId: string, isAdmin: boolean): boolean {
  if (image.status === 'deleted') return false;
  if (isAdmin || image.owner === projectId) return true;
  switch (image.visibility) {
    case 'public':
      return true;
    case 'shared':
    case '':
      return isMember(members, projectId, ['accepted']);
    default:
      return false;
  }
}

/**
 * Whether a project may use the image by its id (show it, boot from it; booting also needs it
 * active): admins and the owner always; public and community images everyone; shared images any
 * member, pending or rejected too (Glance: membership status only decides the listing); private
 * images nobody else. Members of an image that is no longer shared count for nothing.
 */
export function imageUsableBy(image: Listable, members: Members, projectId: string, isAdmin: boolean): boolean {
  if (image.status === 'deleted') return false;
  if (isAdmin || image.owner === projectId) return true;
  switch (image.visibility) {
    case 'public':
    case 'community':
      return true;
    case 'shared':
    case '':
      return isMember(members, projectId, MEMBER_STATUSES);
    default:
      return false;
  }
}
