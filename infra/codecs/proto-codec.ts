// Command and event payloads <-> protobuf bytes by reflection over proto/: the message named
// like the command or event type in the domain's proto package. Commands are checked by the
// domain's pure field rules as they are decoded. Aggregate state snapshots (the changelog, an
// internal cache rebuilt from events if lost) are JSON.
import type { DeciderCodec, Message } from '../../domains/kernel/decider.js';
import type { MachineState } from '../../domains/kernel/machine-decider.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { loadProtoType } from '../envelope/envelope.codec.js';

const TO_OBJECT = { longs: Number, enums: String, defaults: true, arrays: true } as const;

export interface ProtoCodecOptions {
  /** "strata.identity.v1" */
  protoPackage: string;
  commandTypes: readonly string[];
  eventTypes: readonly string[];
  /** Pure field rules: throws InvalidArgumentError naming the field. */
  validate?: (command: Message & Record<string, unknown>) => void;
  /**
   * Per message type, its proto3 `optional` fields (camelCase) that the deciders hold as null:
   * absent on the wire decodes as null (null encodes as absent), where other `optional` fields
   * decode as absent keys and plain fields as their defaults ("" for a string).
   */
  nullable?: Readonly<Record<string, readonly string[]>>;
}

export function protoCodec(options: ProtoCodecOptions): DeciderCodec<MachineState, Message, Message> {
  const types = new Map([...options.commandTypes, ...options.eventTypes].map((t) => [t, loadProtoType(`${options.protoPackage}.${t}`)]));
  const typeOf = (type: string) => {
    const t = types.get(type);
    if (!t) throw new InvalidArgumentError('type', `unknown type ${type}`);
    return t;
  };
  const nullable = new Map(Object.entries(options.nullable ?? {}));
  for (const [type, fields] of nullable) {
    for (const f of fields) {
      const field = typeOf(type).fields[f];
      if (!field?.options?.proto3_optional) throw new Error(`${options.protoPackage}.${type}.${f} is not a proto3 optional field: it cannot be nullable`);
    }
  }
  // The last event payload decoded, by identity: a replay hands one event to every read model
  // that handles it (the domain's, audit, metering), each of which decodes the payload; the second
  // and later get a copy of the first decoding instead of decoding again. A shallow copy: readers
  // never change what they decoded (projections are pure).
  let last: { payload: Uint8Array; type: string; object: Record<string, unknown> } | undefined;
  const decode = (type: string, payload: Uint8Array) => {
    const t = typeOf(type);
    const object = t.toObject(t.decode(payload), TO_OBJECT) as Record<string, unknown>;
    for (const f of nullable.get(type) ?? []) object[f] ??= null;
    return { ...object, type } as Message & Record<string, unknown>;
  };
  const decodeEvent = (type: string, payload: Uint8Array) => {
    if (last && last.payload === payload && last.type === type) return { ...last.object } as Message & Record<string, unknown>;
    const object = decode(type, payload);
    last = { payload, type, object: { ...object } };
    return object;
  };
  const encode = ({ type, ...rest }: Message & Record<string, unknown>) => {
    const t = typeOf(type);
    return t.encode(t.fromObject(rest)).finish();
  };
  const commands = new Set(options.commandTypes);
  return {
    commandTypes: options.commandTypes,
    decodeCommand(type, payload) {
      if (!commands.has(type)) throw new InvalidArgumentError('type', `unknown command type ${type}`);
      let command: Message & Record<string, unknown>;
      try {
        command = decode(type, payload);
      } catch (e) {
        throw new InvalidArgumentError(type, `not a valid ${type} message: ${(e as Error).message}`);
      }
      options.validate?.(command);
      return command;
    },
    encodeCommand: (command) => encode(command as Message & Record<string, unknown>),
    encodeEvent: (event) => encode(event as Message & Record<string, unknown>),
    decodeEvent,
    encodeState: (state) => new TextEncoder().encode(JSON.stringify(state)),
    decodeState: (bytes) => JSON.parse(new TextDecoder().decode(bytes)) as MachineState,
  };
}
