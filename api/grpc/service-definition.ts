// gRPC service definitions from the protobufjs reflection of proto/ (no code generation, no
// @grpc/proto-loader): requests and responses are plain objects with camelCase fields, 64-bit
// integers as numbers, enums as names, and oneof members named in a virtual field.
import { makeGenericClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, oneofs: true };

export function serviceDefinition(root: protobuf.Root, fullServiceName: string): ServiceDefinition {
  const service = root.lookupService(fullServiceName);
  service.resolveAll();
  const def: Record<string, ServiceDefinition[string]> = {};
  for (const method of service.methodsArray) {
    const req = method.resolvedRequestType!;
    const res = method.resolvedResponseType!;
    def[method.name] = {
      path: `/${fullServiceName}/${method.name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: (value: Record<string, unknown>) => Buffer.from(req.encode(req.fromObject(value)).finish()),
      requestDeserialize: (bytes: Buffer) => req.toObject(req.decode(bytes), TO_OBJECT),
      responseSerialize: (value: Record<string, unknown>) => Buffer.from(res.encode(res.fromObject(value)).finish()),
      responseDeserialize: (bytes: Buffer) => res.toObject(res.decode(bytes), TO_OBJECT),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return def;
}

/** A client class for the service (methods named as in the proto: client.IssueToken(...)). */
export const clientConstructor = (root: protobuf.Root, fullServiceName: string) =>
  makeGenericClientConstructor(serviceDefinition(root, fullServiceName), fullServiceName);
