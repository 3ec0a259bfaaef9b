// Identity on the scaled profile: the same API over a 3-broker Kafka cluster (RF 3,
// min.insync.replicas 2), from bootstrap to a scoped member who is refused another project.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roleId } from '../../api/identity/bootstrap.js';
import { KafkaLog } from '../../infra/log/kafka/kafka-log.js';
import { BACKENDS, KAFKA_NODES } from '../support/backends.js';
import { codeOf, startTestCloud, type TestCloud } from './cloud.js';

describe.runIf(BACKENDS.includes('kafka'))('identity on the Kafka log', () => {
  let t: TestCloud;
  beforeAll(async () => {
    const { ensureKafka } = await import('../../infra/kafka/cluster.js');
    const { brokers } = await ensureKafka({ nodes: KAFKA_NODES });
    const log = new KafkaLog({ brokers, replicationFactor: KAFKA_NODES, minInsyncReplicas: 2 });
    t = await startTestCloud({}, { log, replicationFactor: KAFKA_NODES });
  }, 180_000);
  afterAll(async () => t?.close());

  it('bootstraps, creates, grants, scopes and refuses as on the embedded log', async () => {
    const admin = t.client(await t.adminToken());
    const web = (await admin.call('CreateProject', { project: { name: `web-${Date.now()}`, domainId: 'default' } })).project;
    const other = (await admin.call('CreateProject', { project: { name: `other-${Date.now()}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `k-${Date.now()}`, domainId: 'default' }, password: 'kafka-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: web.id, roleId: roleId('member') } });
    const token = await t.login(user.name, 'kafka-pw', { projectId: web.id });
    const member = t.client(token);
    expect((await member.call('GetProject', { id: web.id })).project.id).toBe(web.id);
    expect(await codeOf(member.call('GetProject', { id: other.id }))).toBe(7);
    await admin.call('UpdateUser', { user: { id: user.id, enabled: false }, updateMask: { paths: ['enabled'] } });
    expect(await codeOf(member.call('GetProject', { id: web.id }))).toBe(16);
  });
});
