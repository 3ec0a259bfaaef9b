// The standard gRPC protocols the server speaks besides Strata's own: health and reflection.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const dir = fileURLToPath(new URL('./protos/', import.meta.url));

export const grpcRoot: protobuf.Root = new protobuf.Root().loadSync([`${dir}health.proto`, `${dir}reflection.proto`]);
grpcRoot.resolveAll();

export const HEALTH_SERVICE = 'grpc.health.v1.Health';
export const REFLECTION_SERVICE = 'grpc.reflection.v1.ServerReflection';
export const REFLECTION_SERVICE_V1ALPHA = 'grpc.reflection.v1alpha.ServerReflection';
