// The host side of the test image's guest shell (scripts/build-test-image.sh, strata.shell=ttyS1):
// the qemu driver connects the guest's second serial port to a unix socket (QemuDriver.shellSocket);
// a shell in the guest reads command lines from it and writes their output back. Each command runs
// as `sh -c '<command>' </dev/null 2>&1` (a syntax error ends only that child), followed by an echo
// of a marker with a fresh nonce and the exit status: the marker line is where its output ends.
// One command at a time (they queue); output arrives raw (no echo, no \r added), \r is dropped anyway.
// Input quirk (QEMU 7.2, the emulated 16550A behind a socket chardev): QEMU takes only a few
// bytes from the socket per event on it, then waits for the next write before it reads more, so
// the tail of a line written at once can sit in the socket indefinitely. So lines go in small
// pieces a moment apart, and while an answer is awaited a lone newline is written every 50 ms to
// push what is left through (the shell ignores blank lines; commands read /dev/null, not them).
import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import type { VolumeAttachmentSpec } from './driver.js';
import type { QemuDriver } from './qemu.driver.js';

export class GuestShellError extends Error {}

export interface GuestShellResult {
  /** Standard output and error of the command, as one text. */
  output: string;
  status: number;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PIECE = 4;
const PIECE_GAP_MS = 2;
const NUDGE_MS = 50;

export class GuestShell {
  private buffer = '';
  private waiters: (() => void)[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d.replace(/\r/g, '');
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined); // 'close' follows
  }

  /** Connects to the socket (retrying while QEMU has not made it yet, up to `timeoutMs`). */
  static async connect(socketPath: string, timeoutMs = 10_000): Promise<GuestShell> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection({ path: socketPath });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        return new GuestShell(socket);
      } catch (err) {
        if (Date.now() > deadline) throw new GuestShellError(`guest shell ${socketPath}: ${(err as Error).message}`);
        await sleep(100);
      }
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until the buffer holds a line matching `re`; returns the text before it and drops both. */
  private async until(re: RegExp, timeoutMs: number, what: string): Promise<{ before: string; match: RegExpExecArray }> {
    const deadline = Date.now() + timeoutMs;
    let nudged = Date.now();
    for (;;) {
      const m = re.exec(this.buffer);
      if (m) {
        const before = this.buffer.slice(0, m.index);
        this.buffer = this.buffer.slice(m.index + m[0].length);
        return { before, match: m };
      }
      if (this.closed) throw new GuestShellError(`guest shell closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new GuestShellError(`guest shell: no answer to ${what} within ${timeoutMs} ms (got: ${JSON.stringify(this.buffer.slice(-300))})`);
      if (Date.now() - nudged >= NUDGE_MS) {
        this.socket.write('\n');
        nudged = Date.now();
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, NUDGE_MS));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Writes `text` in small pieces a moment apart (see the input quirk above). */
  private async send(text: string): Promise<void> {
    for (let i = 0; i < text.length; i += PIECE) {
      if (this.closed) return;
      this.socket.write(text.slice(i, i + PIECE));
      await sleep(PIECE_GAP_MS);
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Waits until the guest's shell answers (it starts a while after boot; what is typed before it
   * runs is lost): sends an echo once a second until it comes back.
   */
  ready(timeoutMs = 60_000): Promise<void> {
    return this.serial(async () => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const nonce = randomBytes(6).toString('hex');
        // Quoted apart so the tty's echo of the line (before the guest made it raw) does not match.
        await this.send(`\necho "STRATA-SHELL-""READY-${nonce}"\n`);
        try {
          await this.until(new RegExp(`STRATA-SHELL-READY-${nonce}\\n`), Math.min(1000, Math.max(1, deadline - Date.now())), 'the ready probe');
          this.buffer = '';
          return;
        } catch (err) {
          if (this.closed || Date.now() > deadline) throw err;
        }
      }
    });
  }

  /** Runs `command` in the guest; resolves with its output and exit status. */
  exec(command: string, timeoutMs = 60_000): Promise<GuestShellResult> {
    return this.serial(async () => {
      const nonce = randomBytes(6).toString('hex');
      this.buffer = ''; // what came before belongs to no command (late ready probes)
      await this.send(`sh -c ${quote(command)} </dev/null 2>&1; echo "STRATA-""END-${nonce} $?"\n`);
      const { before, match } = await this.until(new RegExp(`STRATA-END-${nonce} (\\d+)\\n`), timeoutMs, JSON.stringify(command));
      return { output: before, status: Number(match[1]) };
    });
  }

  /** Runs `command` in the guest; resolves with its output, rejects when it exits non-zero. */
  async run(command: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(command, timeoutMs);
    if (r.status !== 0) throw new GuestShellError(`guest command ${JSON.stringify(command)} exited ${r.status}: ${r.output.trim()}`);
    return r.output;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Connects to the guest shell at `socketPath` and waits until it answers. */
export async function guestShell(socketPath: string, timeoutMs = 60_000): Promise<GuestShell> {
  const shell = await GuestShell.connect(socketPath, Math.min(timeoutMs, 10_000));
  try {
    await shell.ready(timeoutMs);
  } catch (err) {
    shell.close();
    throw err;
  }
  return shell;
}

/** A virtio disk as the guest sees it (/sys/block/vd*). */
export interface GuestDisk {
  /** Its name in the guest (the guest orders disks its own way: not the driver's device name). */
  name: string;
  /** /sys/block/<name>/size: 512-byte sectors. */
  sectors: number;
  /** /sys/block/<name>/serial: the volume id's first 20 characters for a volume. */
  serial: string;
  readOnly: boolean;
}

/** The guest's virtio disks. */
export async function guestDisks(shell: GuestShell): Promise<GuestDisk[]> {
  const out = await shell.run('for d in /sys/block/vd*; do [ -e "$d/size" ] && echo "${d##*/} $(cat $d/size) $(cat $d/ro) $(cat $d/serial)"; done; true');
  const disks: GuestDisk[] = [];
  for (const line of out.split('\n')) {
    const [name, sectors, ro, serial] = line.trim().split(/\s+/);
    if (name && sectors && /^\d+$/.test(sectors)) disks.push({ name, sectors: Number(sectors), readOnly: ro === '1', serial: serial ?? '' });
  }
  return disks;
}

/** The guest's disk with this serial, if it has it. */
export async function diskBySerial(shell: GuestShell, serial: string): Promise<GuestDisk | undefined> {
  return (await guestDisks(shell)).find((d) => d.serial === serial);
}

/**
 * Attaches a volume and measures attach-to-visible: from the call until the guest lists the disk
 * (by its serial) in /sys/block, polled through the shell (each poll takes some 50-300 ms on a
 * TCG guest: that is the resolution). Returns the device the driver reported, the disk, and the time.
 */
export async function attachAndSee(
  driver: QemuDriver,
  shell: GuestShell,
  instanceId: string,
  attachment: VolumeAttachmentSpec,
  timeoutMs = 60_000,
): Promise<{ device: string; disk: GuestDisk; ms: number }> {
  const t0 = performance.now();
  const { device } = await driver.attachVolume(instanceId, attachment);
  const serial = (attachment.serial ?? attachment.volumeId).slice(0, 20);
  for (;;) {
    const disk = await diskBySerial(shell, serial);
    if (disk) return { device, disk, ms: performance.now() - t0 };
    if (performance.now() - t0 > timeoutMs) throw new GuestShellError(`disk ${serial} did not appear in ${instanceId} within ${timeoutMs} ms`);
    await sleep(20);
  }
}
