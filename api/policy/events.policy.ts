// The rule of SubscriptionService (api/events/subscription.service.ts): cloud admins subscribe to
// every project's events (or one project's); a project's readers (members imply reader) to their
// own project's, which the service enforces as the target: a tenant's subscription always targets
// its token's project, so asking for another project fails this rule (PERMISSION_DENIED).
import { admin, any, projectReader, Policy } from './policy.js';
import { projectMember } from './compute.policy.js';

export const EVENTS_SUBSCRIBE_RULE = 'events:subscribe';

export const eventsPolicy = new Policy({
  [EVENTS_SUBSCRIBE_RULE]: any(admin, projectReader, projectMember),
});
