// The identity resources as the domain sees them: the messages of
// proto/strata/identity/v1/resources.proto with camelCase fields.

export interface Domain {
  id: string;
  name: string;
  description: string;
  enabled: boolean;
}

export interface Project {
  id: string;
  name: string;
  description: string;
  domainId: string;
  parentId: string;
  enabled: boolean;
}

export interface User {
  id: string;
  name: string;
  domainId: string;
  email: string;
  description: string;
  defaultProjectId: string;
  enabled: boolean;
  lockedUntilMs: number;
}

export interface Group {
  id: string;
  name: string;
  domainId: string;
  description: string;
}

export interface Role {
  id: string;
  name: string;
  description: string;
  implies: string[];
}

/** Exactly one actor and one target are set (the proto oneofs). */
export interface RoleAssignment {
  id: string;
  userId?: string;
  groupId?: string;
  projectId?: string;
  domainId?: string;
  system?: boolean;
  roleId: string;
  inherited: boolean;
}

export interface Region {
  id: string;
  description: string;
  parentRegionId: string;
}

export interface Service {
  id: string;
  type: string;
  name: string;
  description: string;
  enabled: boolean;
}

export interface Endpoint {
  id: string;
  serviceId: string;
  regionId: string;
  interface: string;
  url: string;
  enabled: boolean;
}

export interface TokenRecord {
  auditId: string;
  userId: string;
  methods: string[];
  projectId: string;
  domainId: string;
  system: boolean;
  roles: string[];
  issuedAtMs: number;
  expiresAtMs: number;
  auditIds: string[];
}

/** The aggregate types of the identity domain; the aggregate id is the resource id. */
export const IDENTITY_DOMAIN = 'identity';
