// The gRPC server layer over TLS on loopback: a service round trip, the CA check, health
// checking (Check and Watch) and server reflection (list, file by symbol with its imports).
import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import { grpcRoot, HEALTH_SERVICE, REFLECTION_SERVICE, REFLECTION_SERVICE_V1ALPHA } from './grpc-protos.js';
import { startGrpcServer, type GrpcServer } from './server.js';
import { clientConstructor } from './service-definition.js';
import { ensureTlsMaterial, type TlsMaterial } from './tls.js';

// The google types come from protobufjs's bundled copies, as `import` would load them.
const echoRoot = new protobuf.Root();
echoRoot.addJSON((protobuf.common as unknown as { get(file: string): { nested: Record<string, protobuf.AnyNestedObject> } }).get('google/protobuf/timestamp.proto').nested);
protobuf.parse(`
  syntax = "proto3";
  package test.echo.v1;
  import "google/protobuf/timestamp.proto";
  message EchoRequest { string text = 1; google.protobuf.Timestamp at = 2; }
  message EchoResponse { string text = 1; }
  service EchoService { rpc Echo(EchoRequest) returns (EchoResponse); }
`, echoRoot);
echoRoot.resolveAll();

type AnyClient = Client & Record<string, (...args: unknown[]) => any>;
const unary = <T>(client: AnyClient, method: string, req: unknown) =>
  new Promise<T>((resolve, reject) => client[method](req, (e: ServiceError | null, r: T) => (e ? reject(e) : resolve(r))));

describe('the gRPC server', () => {
  let tls: TlsMaterial;
  let server: GrpcServer;
  let dir: string;
  const clients: AnyClient[] = [];
  const client = (root: protobuf.Root, service: string, ca: Buffer | null = tls.caCert) => {
    const Ctor = clientConstructor(root, service);
    const c = new Ctor(`127.0.0.1:${server.port}`, credentials.createSsl(ca)) as AnyClient;
    clients.push(c);
    return c;
  };
  const reflect = (req: Record<string, unknown>) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      const call = client(grpcRoot, REFLECTION_SERVICE).ServerReflectionInfo();
      call.on('data', (res: Record<string, any>) => {
        resolve(res);
        call.end();
      });
      call.on('error', reject);
      call.write(req);
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-grpc-'));
    tls = await ensureTlsMaterial(join(dir, 'tls'));
    server = await startGrpcServer({
      tls,
      root: echoRoot,
      services: [{ name: 'test.echo.v1.EchoService', implementation: { Echo: (call: any, cb: any) => cb(null, { text: call.request.text }) } }],
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
  });

  it('answers over TLS, and a client that does not trust the CA cannot connect', async () => {
    expect(await unary<{ text: string }>(client(echoRoot, 'test.echo.v1.EchoService'), 'Echo', { text: 'hi' })).toEqual({ text: 'hi' });
    const other = await ensureTlsMaterial(join(dir, 'other-ca'));
    await expect(unary(client(echoRoot, 'test.echo.v1.EchoService', other.caCert), 'Echo', { text: 'x' })).rejects.toMatchObject({ code: 14 });
  });

  it('keeps its TLS material across starts, with private keys readable by the owner only', async () => {
    const again = await ensureTlsMaterial(join(dir, 'tls'));
    expect(again.cert.equals(tls.cert)).toBe(true);
    expect(statSync(tls.keyPath).mode & 0o777).toBe(0o600);
  });

  it('answers health checks for the server and each service', async () => {
    const health = client(grpcRoot, HEALTH_SERVICE);
    expect(await unary(health, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
    expect(await unary(health, 'Check', { service: 'test.echo.v1.EchoService' })).toEqual({ status: 'SERVING' });
    await expect(unary(health, 'Check', { service: 'nope' })).rejects.toMatchObject({ code: 5 });
  });

  it('streams health changes to watchers', async () => {
    const seen: string[] = [];
    const call = client(grpcRoot, HEALTH_SERVICE).Watch({ service: 'test.echo.v1.EchoService' });
    await new Promise<void>((resolve) => {
      call.on('data', (r: { status: string }) => {
        seen.push(r.status);
        if (seen.length === 1) server.health.setStatus('test.echo.v1.EchoService', 'NOT_SERVING');
        if (seen.length === 2) resolve();
      });
    });
    call.on('error', () => undefined); // the CANCELLED status of our own cancel
    call.cancel();
    server.health.setStatus('test.echo.v1.EchoService', 'SERVING');
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
  });

  it('lists its services by reflection', async () => {
    const res = await reflect({ listServices: '*' });
    expect(res.listServicesResponse.service.map((s: { name: string }) => s.name).sort()).toEqual(
      ['test.echo.v1.EchoService', HEALTH_SERVICE, REFLECTION_SERVICE, REFLECTION_SERVICE_V1ALPHA].sort(),
    );
  });

  it('returns the file that defines a symbol, with the files it imports', async () => {
    const res = await reflect({ fileContainingSymbol: 'test.echo.v1.EchoService' });
    const FileDescriptorProto = (descriptor as unknown as { FileDescriptorProto: protobuf.Type }).FileDescriptorProto;
    const files = res.fileDescriptorResponse.fileDescriptorProto.map((b: Buffer) => FileDescriptorProto.toObject(FileDescriptorProto.decode(b)) as any);
    const echo = files.find((f: any) => f.package === 'test.echo.v1');
    expect(echo.service[0].name).toBe('EchoService');
    expect(echo.service[0].method[0]).toMatchObject({ name: 'Echo', inputType: '.test.echo.v1.EchoRequest' });
    const google = files.find((f: any) => f.package === 'google.protobuf');
    expect(google.messageType.map((m: any) => m.name)).toContain('Timestamp');
    expect(echo.dependency).toEqual([google.name]);
    // A method name resolves to its service's file too.
    expect((await reflect({ fileContainingSymbol: 'test.echo.v1.EchoService.Echo' })).fileDescriptorResponse).toBeDefined();
  });

  it('answers NOT_FOUND (5) for an unknown symbol', async () => {
    expect((await reflect({ fileContainingSymbol: 'no.such.Thing' })).errorResponse).toMatchObject({ errorCode: 5 });
  });
});

describe('reflection of the Strata protos', () => {
  it('resolves IdentityService and the google types it imports', async () => {
    const { Reflection } = await import('./reflection.js');
    const r = new Reflection([protoRoot(), grpcRoot], ['strata.identity.v1.IdentityService']);
    const res = r.answer({ messageRequest: 'fileContainingSymbol', fileContainingSymbol: 'strata.identity.v1.IdentityService' });
    const FileDescriptorProto = (descriptor as unknown as { FileDescriptorProto: protobuf.Type }).FileDescriptorProto;
    const files = (res.fileDescriptorResponse as { fileDescriptorProto: Buffer[] }).fileDescriptorProto.map((b) => FileDescriptorProto.decode(b) as any);
    expect(files.map((f) => f.package).sort()).toEqual(['google.protobuf', 'strata.identity.v1']);
  });
});
