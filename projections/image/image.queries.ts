// Queries over the image read models, shaped as Glance shows them (and as ImageService's Image
// message carries them): an image by id with its members, the images a project sees (Glance's
// list: the owner's own, public ones, shared ones it accepted (or the member_status asked for),
// community ones only when asked for by visibility), with Glance's filters; an image's members.
// Lists are ordered by id and paged by `after` (the last id of the previous page) and `limit`.
import type { Image, ImageMember } from '../../domains/image/image.types.js';
import type { Store } from '../../infra/store/store.js';

type Row = Record<string, any>;

/** An image as the read model has it, with the reason of its last status change. */
export type ImageRecord = Image & { statusReason: string };

export type MemberRecord = ImageMember & { imageId: string };

export interface ImageListOptions {
  /** The caller's project; undefined: an admin, who sees every image. */
  projectId?: string;
  name?: string;
  status?: string;
  visibility?: string;
  owner?: string;
  /** For shared images of other projects: accepted (default), pending, rejected or all. */
  memberStatus?: string;
  /** true: only hidden images; false (default): only images not hidden. */
  osHidden?: boolean;
  after?: string;
  limit?: number;
}

const imageOf = (r: Row): ImageRecord => ({
  id: r.id,
  name: r.name,
  owner: r.owner,
  status: r.status,
  visibility: r.visibility,
  diskFormat: r.disk_format,
  containerFormat: r.container_format,
  minDisk: Number(r.min_disk),
  minRam: Number(r.min_ram),
  protected: Boolean(Number(r.protected)),
  osHidden: Boolean(Number(r.os_hidden)),
  tags: JSON.parse(r.tags),
  properties: JSON.parse(r.properties),
  size: Number(r.size),
  virtualSize: Number(r.virtual_size),
  checksum: r.checksum,
  osHashAlgo: r.os_hash_algo,
  osHashValue: r.os_hash_value,
  location: r.location,
  statusReason: r.status_reason,
  createdAtMs: Number(r.created_at_ms),
  updatedAtMs: Number(r.updated_at_ms),
});

const memberOf = (r: Row): MemberRecord => ({
  imageId: r.image_id,
  memberProjectId: r.member_project_id,
  status: r.status,
  createdAtMs: Number(r.created_at_ms),
  updatedAtMs: Number(r.updated_at_ms),
});

export class ImageQueries {
  constructor(private readonly store: Store) {}

  async getImage(id: string): Promise<ImageRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM image_images WHERE id = $1', [id]);
    return row ? imageOf(row) : undefined;
  }

  /** An image's members, by project id. */
  async members(imageId: string): Promise<MemberRecord[]> {
    return (await this.store.query<Row>('SELECT * FROM image_members WHERE image_id = $1 ORDER BY member_project_id', [imageId])).map(memberOf);
  }

  /** The images a project sees (Glance's image list), filtered, ordered by id. */
  async listImages(o: ImageListOptions = {}): Promise<ImageRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (o.projectId !== undefined) {
      const project = p(o.projectId);
      const memberStatus = o.memberStatus || 'accepted';
      const statusCheck = memberStatus === 'all' ? '' : ` AND m.status = ${p(memberStatus)}`;
      const shared = `(i.visibility IN ('shared', '') AND EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = i.id AND m.member_project_id = ${project}${statusCheck}))`;
      // Community images of others are listed only when asked for (Glance).
      const community = o.visibility === 'community' ? " OR i.visibility = 'community'" : '';
      where.push(`(i.owner = ${project} OR i.visibility = 'public' OR ${shared}${community})`);
    }
    if (o.name) where.push(`i.name = ${p(o.name)}`);
    if (o.status) where.push(`i.status = ${p(o.status)}`);
    if (o.visibility) where.push(o.visibility === 'shared' ? "i.visibility IN ('shared', '')" : `i.visibility = ${p(o.visibility)}`);
    if (o.owner) where.push(`i.owner = ${p(o.owner)}`);
    where.push(`i.os_hidden = ${p(o.osHidden ? 1 : 0)}`);
    if (o.after) where.push(`i.id > ${p(o.after)}`);
    const limit = o.limit ? ` LIMIT ${p(o.limit)}` : '';
    const rows = await this.store.query<Row>(`SELECT i.* FROM image_images i WHERE ${where.join(' AND ')} ORDER BY i.id${limit}`, params);
    return rows.map(imageOf);
  }

  /** Images a project is a member of (any status), for its views of them. */
  async membershipsOf(projectId: string): Promise<MemberRecord[]> {
    return (await this.store.query<Row>('SELECT * FROM image_members WHERE member_project_id = $1 ORDER BY image_id', [projectId])).map(memberOf);
  }
}
