// The object storage resources as the domain sees them (Swift's, shared/reference §8): the
// messages of proto/strata/object/v1/resources.proto with camelCase fields. An account is a
// project's (AUTH_<project id>); a container's aggregate id is "<account>/<container>", an
// object's "<account>/<container>/<object>".

export const OBJECT_DOMAIN = 'object';
/** The ring of the only storage policy so far. */
export const DEFAULT_RING = 'default';

export interface Container {
  account: string;
  name: string;
  metadata: Record<string, string>;
  readAcl: string[];
  writeAcl: string[];
  quotaBytes: number;
  quotaCount: number;
  createdAtMs: number;
}

export interface Segment {
  path: string;
  etag: string;
  size: number;
}

export interface ObjectVersion {
  account: string;
  container: string;
  name: string;
  timestamp: string;
  etag: string;
  size: number;
  contentType: string;
  metadata: Record<string, string>;
  partition: number;
  segments: Segment[];
  ringVersion: number;
}

/** Swift's limits (constraints.py defaults). */
export const LIMITS = {
  accountName: 256,
  containerName: 256,
  objectName: 1024,
  metaName: 128,
  metaValue: 256,
  metaCount: 90,
  metaOverall: 4096,
  /** Largest single PUT: bigger objects are static large objects. */
  objectSize: 5_368_709_122,
  /** Segments per static large object manifest. */
  segments: 1000,
  /** Listing limit (default and maximum). */
  listing: 10_000,
} as const;

export const accountOf = (projectId: string) => `AUTH_${projectId}`;
export const containerId = (account: string, container: string) => `${account}/${container}`;
export const objectId = (account: string, container: string, object: string) => `${account}/${container}/${object}`;

/** Swift's timestamps: seconds with 5 decimals, fixed width, so that string order is time order. */
export const TIMESTAMP = /^\d{10}\.\d{5}$/;
export const timestampOf = (ms: number, sequence = 0) => {
  const micro10 = Math.floor(ms) * 100 + (sequence % 100);
  const s = String(micro10).padStart(15, '0');
  return `${s.slice(0, 10)}.${s.slice(10)}`;
};
