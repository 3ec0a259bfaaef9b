// A faster decoding of event envelopes read back from our own log (the rebuild and the projection
// runners' hot path): the protobuf wire format of strata.core.v1.EventEnvelope read field by
// field, straight into an EventEnvelope, without protobufjs's message objects, Long values and
// Timestamp/Actor objects. Same result as decodeEvent for every envelope encodeEvent writes
// (envelope.trusted.test.ts); it checks only what it needs to read safely (truncation, wire
// types), so input from outside the log still goes through decodeEvent and its validation.
import type { Actor, EventEnvelope } from './envelope.js';
import { InvalidEnvelopeError } from './envelope.codec.js';

const emptyActor: Actor = { userId: '', projectId: '', roles: [] };

class Cursor {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    const buf = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new InvalidEnvelopeError('envelope', 'event envelope: truncated varint');
      const b = buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new InvalidEnvelopeError('envelope', 'event envelope: varint too long');
  }

  /** The end of a length-delimited field that starts here. */
  delimited(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new InvalidEnvelopeError('envelope', 'event envelope: truncated field');
    return end;
  }

  string(): string {
    const end = this.delimited();
    // utf8Slice: Buffer's own toString('utf8', ...) without its argument checks.
    const s = (this.buf as unknown as { utf8Slice(start: number, end: number): string }).utf8Slice(this.pos, end);
    this.pos = end;
    return s;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new InvalidEnvelopeError('envelope', `event envelope: unexpected wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new InvalidEnvelopeError('envelope', 'event envelope: truncated field');
  }
}

function actorAt(c: Cursor, end: number): Actor {
  const a = new Cursor(c.buf, c.pos, end);
  let userId = '';
  let projectId = '';
  const roles: string[] = [];
  while (a.pos < end) {
    const tag = a.varint();
    const field = tag >>> 3;
    if (field === 1 && (tag & 7) === 2) userId = a.string();
    else if (field === 2 && (tag & 7) === 2) projectId = a.string();
    else if (field === 3 && (tag & 7) === 2) roles.push(a.string());
    else a.skip(tag & 7);
  }
  c.pos = end;
  return { userId, projectId, roles };
}

function timestampAt(c: Cursor, end: number): number {
  const t = new Cursor(c.buf, c.pos, end);
  let seconds = 0;
  let nanos = 0;
  while (t.pos < end) {
    const tag = t.varint();
    const field = tag >>> 3;
    if (field === 1 && (tag & 7) === 0) seconds = t.varint();
    else if (field === 2 && (tag & 7) === 0) nanos = t.varint();
    else t.skip(tag & 7);
  }
  c.pos = end;
  if (!Number.isSafeInteger(seconds)) throw new InvalidEnvelopeError('occurred_at', 'event envelope: occurred_at is beyond 2^53');
  return seconds * 1000 + Math.floor(nanos / 1e6);
}

/** An event envelope from the log's own bytes (see the file's comment); decodeEvent for anything else. */
export function decodeTrustedEvent(data: Uint8Array): EventEnvelope {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const c = new Cursor(buf, 0, buf.length);
  const e: EventEnvelope = {
    eventId: '',
    aggregateType: '',
    aggregateId: '',
    version: 0,
    type: '',
    payload: new Uint8Array(),
    actor: emptyActor,
    causationId: '',
    correlationId: '',
    traceparent: '',
    tracestate: '',
    occurredAtMs: 0,
  };
  while (c.pos < c.end) {
    const tag = c.varint();
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 1:
        if (wire !== 2) break;
        e.eventId = c.string();
        continue;
      case 2:
        if (wire !== 2) break;
        e.aggregateType = c.string();
        continue;
      case 3:
        if (wire !== 2) break;
        e.aggregateId = c.string();
        continue;
      case 4: {
        if (wire !== 0) break;
        const v = c.varint();
        if (!Number.isSafeInteger(v)) throw new InvalidEnvelopeError('version', 'event envelope: version is beyond 2^53');
        e.version = v;
        continue;
      }
      case 5:
        if (wire !== 2) break;
        e.type = c.string();
        continue;
      case 6: {
        if (wire !== 2) break;
        const end = c.delimited();
        e.payload = buf.subarray(c.pos, end);
        c.pos = end;
        continue;
      }
      case 7:
        if (wire !== 2) break;
        e.actor = actorAt(c, c.delimited());
        continue;
      case 8:
        if (wire !== 2) break;
        e.causationId = c.string();
        continue;
      case 9:
        if (wire !== 2) break;
        e.correlationId = c.string();
        continue;
      case 10:
        if (wire !== 2) break;
        e.traceparent = c.string();
        continue;
      case 11:
        if (wire !== 2) break;
        e.tracestate = c.string();
        continue;
      case 12:
        if (wire !== 2) break;
        e.occurredAtMs = timestampAt(c, c.delimited());
        continue;
    }
    c.skip(wire);
  }
  return e;
}
