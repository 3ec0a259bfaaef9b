// The gRPC server every Strata service plugs into: TLS (or plain for a trusted loopback), the
// services given, gRPC health checking and server reflection.
import { Server, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { grpcRoot, HEALTH_SERVICE, REFLECTION_SERVICE, REFLECTION_SERVICE_V1ALPHA } from './grpc-protos.js';
import { HealthService } from './health.js';
import { Reflection } from './reflection.js';
import { serviceDefinition } from './service-definition.js';
import { serverCredentials, type TlsMaterial } from './tls.js';

export interface GrpcServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default): any free port. */
  port?: number;
  tls: TlsMaterial | 'insecure';
  /** Where the services' types live (proto/, loaded by protobufjs). */
  root: protobuf.Root;
  services: { name: string; implementation: UntypedServiceImplementation }[];
}

export interface GrpcServer {
  port: number;
  address: string;
  health: HealthService;
  /** Marks every service NOT_SERVING, lets calls finish for graceMs, then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(o: GrpcServerOptions): Promise<GrpcServer> {
  const server = new Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  for (const s of o.services) server.addService(serviceDefinition(o.root, s.name), s.implementation);
  const health = new HealthService();
  server.addService(serviceDefinition(grpcRoot, HEALTH_SERVICE), health.implementation);
  const names = [...o.services.map((s) => s.name), HEALTH_SERVICE, REFLECTION_SERVICE, REFLECTION_SERVICE_V1ALPHA];
  const reflection = new Reflection([o.root, grpcRoot], names);
  const v1 = serviceDefinition(grpcRoot, REFLECTION_SERVICE);
  server.addService(v1, reflection.implementation);
  // v1alpha is the same protocol under the older package name, which many clients still ask for.
  const alpha = Object.fromEntries(
    Object.entries(v1).map(([k, m]) => [k, { ...m, path: m.path.replace(REFLECTION_SERVICE, REFLECTION_SERVICE_V1ALPHA) }]),
  );
  server.addService(alpha, reflection.implementation);

  const host = o.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${o.port ?? 0}`, serverCredentials(o.tls), (e, p) => (e ? reject(e) : resolve(p))),
  );
  health.setStatus('', 'SERVING');
  for (const s of o.services) health.setStatus(s.name, 'SERVING');
  return {
    port,
    address: `${host}:${port}`,
    health,
    close: (graceMs = 2000) =>
      new Promise<void>((resolve) => {
        health.shutdown();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
