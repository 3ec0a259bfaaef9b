// The revocation list that token validation checks, held in memory and reloaded from the
// identity_revocations rows whenever the projection applies a revoking event (before the API
// answers the call that caused it). A token is revoked when any of its audit ids is listed, or
// when its user, project or domain was revoked at or after the token was issued.
import { REVOKING_EVENTS } from '../../projections/identity/identity.projection.js';
import type { EventEnvelope } from '../../infra/envelope/envelope.js';
import type { Store } from '../../infra/store/store.js';
import type { TokenPayload } from './token.js';

type Kind = 'audit' | 'user' | 'project' | 'domain';

export class RevocationIndex {
  private latest = new Map<string, number>();

  constructor(private readonly store: Store) {}

  private static key(kind: Kind, id: string) {
    return `${kind}\u0000${id}`;
  }

  async reload(): Promise<void> {
    const rows = await this.store.query<{ kind: Kind; subject_id: string; issued_before_ms: number | string }>(
      'SELECT kind, subject_id, MAX(issued_before_ms) AS issued_before_ms FROM identity_revocations GROUP BY kind, subject_id',
    );
    this.latest = new Map(rows.map((r) => [RevocationIndex.key(r.kind, r.subject_id), Number(r.issued_before_ms)]));
  }

  /** For ProjectionRunner.onApplied. */
  readonly onApplied = async (events: EventEnvelope[]): Promise<void> => {
    if (events.some((e) => REVOKING_EVENTS.has(e.type))) await this.reload();
  };

  get size(): number {
    return this.latest.size;
  }

  /** The reason a token is revoked, or undefined. */
  revoked(token: TokenPayload): string | undefined {
    for (const a of token.auditIds) if (this.latest.has(RevocationIndex.key('audit', a))) return 'the token was revoked';
    const before = (kind: Kind, id: string) => {
      const t = this.latest.get(RevocationIndex.key(kind, id));
      return t !== undefined && token.issuedAtMs <= t;
    };
    if (before('user', token.userId)) return 'the user was disabled, deleted, changed password or lost a role since';
    if (before('domain', token.userDomainId)) return "the user's domain was disabled or deleted since";
    const scope = token.scope;
    if (scope.kind === 'project' && (before('project', scope.projectId) || before('domain', scope.domainId))) {
      return 'the project or its domain was disabled or deleted since';
    }
    if (scope.kind === 'domain' && before('domain', scope.domainId)) return 'the domain was disabled or deleted since';
    return undefined;
  }
}
