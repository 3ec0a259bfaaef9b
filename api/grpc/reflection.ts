// gRPC server reflection (grpc.reflection.v1 and v1alpha), so that generic clients (grpcurl,
// Postman, grpc_cli) can list the services and learn their messages. File descriptors come from
// protobufjs's reflection (one file per package); their imports are worked out here from the
// types they reference, since protobufjs leaves them out.
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';

interface FileProto {
  name: string;
  package: string;
  dependency: string[];
  messageType?: MessageProto[];
  enumType?: { name: string }[];
  service?: { name: string; method?: { name: string; inputType: string; outputType: string }[] }[];
}
interface MessageProto {
  name: string;
  field?: { typeName?: string }[];
  nestedType?: MessageProto[];
  enumType?: { name: string }[];
}

type Req = Record<string, unknown> & { messageRequest?: string };

export class Reflection {
  private readonly files = new Map<string, FileProto>();
  /** Fully qualified symbol (no leading dot) -> file name. */
  private readonly symbols = new Map<string, string>();
  private readonly encoded = new Map<string, Buffer>();

  constructor(
    roots: protobuf.Root[],
    private readonly services: string[],
  ) {
    for (const root of roots) {
      const set = (root as unknown as { toDescriptor(syntax: string): { file: FileProto[] } }).toDescriptor('proto3');
      for (const file of set.file) {
        if (this.files.has(file.name)) continue;
        this.files.set(file.name, file);
        const pkg = file.package ? `${file.package}.` : '';
        const addMessage = (m: MessageProto, prefix: string) => {
          this.symbols.set(`${prefix}${m.name}`, file.name);
          for (const n of m.nestedType ?? []) addMessage(n, `${prefix}${m.name}.`);
          for (const e of m.enumType ?? []) this.symbols.set(`${prefix}${m.name}.${e.name}`, file.name);
        };
        for (const m of file.messageType ?? []) addMessage(m, pkg);
        for (const e of file.enumType ?? []) this.symbols.set(`${pkg}${e.name}`, file.name);
        for (const s of file.service ?? []) {
          this.symbols.set(`${pkg}${s.name}`, file.name);
          for (const m of s.method ?? []) this.symbols.set(`${pkg}${s.name}.${m.name}`, file.name);
        }
      }
    }
    // Imports: every file that defines a type this file references.
    for (const file of this.files.values()) {
      const referenced = new Set<string>();
      const visit = (m: MessageProto) => {
        for (const f of m.field ?? []) if (f.typeName) referenced.add(f.typeName.replace(/^\./, ''));
        for (const n of m.nestedType ?? []) visit(n);
      };
      for (const m of file.messageType ?? []) visit(m);
      for (const s of file.service ?? []) for (const m of s.method ?? []) referenced.add(m.inputType.replace(/^\./, '')).add(m.outputType.replace(/^\./, ''));
      const deps = new Set<string>();
      for (const r of referenced) {
        const f = this.symbols.get(r);
        if (f && f !== file.name) deps.add(f);
      }
      file.dependency = [...deps].sort();
    }
  }

  private encode(name: string): Buffer {
    let bytes = this.encoded.get(name);
    if (!bytes) {
      const type = (descriptor as unknown as { FileDescriptorProto: protobuf.Type }).FileDescriptorProto;
      bytes = Buffer.from(type.encode(this.files.get(name) as never).finish());
      this.encoded.set(name, bytes);
    }
    return bytes;
  }

  /** The file and every file it imports, transitively, encoded as FileDescriptorProto. */
  private withDependencies(name: string): Buffer[] {
    const seen = new Set<string>();
    const walk = (n: string) => {
      if (seen.has(n)) return;
      seen.add(n);
      for (const d of this.files.get(n)?.dependency ?? []) walk(d);
    };
    walk(name);
    return [...seen].map((n) => this.encode(n));
  }

  fileOfSymbol(symbol: string): string | undefined {
    return this.symbols.get(symbol.replace(/^\./, ''));
  }

  answer(req: Req): Record<string, unknown> {
    const base = { validHost: String(req.host ?? ''), originalRequest: req };
    const notFound = (what: string) => ({ ...base, errorResponse: { errorCode: 5, errorMessage: `${what} not found` } });
    switch (req.messageRequest) {
      case 'listServices':
        return { ...base, listServicesResponse: { service: this.services.map((name) => ({ name })) } };
      case 'fileContainingSymbol': {
        const file = this.fileOfSymbol(String(req.fileContainingSymbol));
        return file ? { ...base, fileDescriptorResponse: { fileDescriptorProto: this.withDependencies(file) } } : notFound(`symbol ${req.fileContainingSymbol}`);
      }
      case 'fileByFilename': {
        const name = String(req.fileByFilename);
        return this.files.has(name) ? { ...base, fileDescriptorResponse: { fileDescriptorProto: this.withDependencies(name) } } : notFound(`file ${name}`);
      }
      case 'fileContainingExtension':
      case 'allExtensionNumbersOfType':
        // proto3 has no extensions: none of our types declares any.
        return notFound('extension');
      default:
        return { ...base, errorResponse: { errorCode: 3, errorMessage: 'unknown reflection request' } };
    }
  }

  readonly implementation: UntypedServiceImplementation = {
    ServerReflectionInfo: (call: ServerDuplexStream<Req, Record<string, unknown>>) => {
      call.on('data', (req: Req) => call.write(this.answer(req)));
      call.on('end', () => call.end());
    },
  };
}
