/**
 * A log storage layer the tests control (LogFileOps over the real filesystem) that models what
 * survives a power loss, the pessimistic POSIX way:
 *   - a file's content survives only as of its last fsync / fdatasync, or the last write through an
 *     O_DSYNC descriptor;
 *   - a create, rename or unlink takes effect only once its directory was fsynced;
 *   - optionally (`tornPages`), an in-flight write leaves a page-aligned prefix, as a disk that
 *     persisted some of its pages would.
 * `powerLoss()` rewrites the files it tracks to what would survive and makes every later operation
 * fail with EIO (the old engine can no longer acknowledge anything). A SIGKILL keeps the page cache,
 * so only this kind of test notices a missing fsync (ADR 0010/0011).
 */
import fs from "node:fs";
import path from "node:path";
import type { LogFileOps } from "../../../src/ledger/embedded/wal.js";

const { O_DSYNC = 0, O_TRUNC } = fs.constants;

class Inode {
  durable: Buffer = Buffer.alloc(0);
}

interface OpenFile {
  path: string;
  inode: Inode | null; // null: a directory
  dsync: boolean;
}

function eio(): Error {
  return Object.assign(new Error("EIO: i/o error (simulated power loss)"), { code: "EIO" });
}

export class PowerLossFileOps implements LogFileOps {
  private readonly entries = new Map<string, { inode: Inode; durableEntry: boolean }>();
  private readonly renamedAway = new Map<string, Inode>();
  private readonly fds = new Map<number, OpenFile>();
  private dead = false;
  /** Syncs that made data durable (fsync, fdatasync, O_DSYNC writes), for the test's own sanity checks. */
  syncs = 0;

  constructor(private readonly opts: { tornPages?: () => number } = {}) {}

  open(file: string, flags: number, mode: number): number {
    if (this.dead) throw eio();
    const existed = fs.existsSync(file);
    const fd = fs.openSync(file, flags, mode);
    if (fs.fstatSync(fd).isDirectory()) {
      this.fds.set(fd, { path: file, inode: null, dsync: false });
      return fd;
    }
    let e = this.entries.get(file);
    if (!e) {
      const inode = new Inode();
      // A file that existed before this layer saw it was durable as it was (minus O_TRUNC's effect, which is not).
      if (existed && (flags & O_TRUNC) === 0) inode.durable = fs.readFileSync(file);
      e = { inode, durableEntry: existed };
      this.entries.set(file, e);
    }
    this.fds.set(fd, { path: file, inode: e.inode, dsync: O_DSYNC !== 0 && (flags & O_DSYNC) === O_DSYNC });
    return fd;
  }

  private capture(fd: number): void {
    const f = this.fds.get(fd);
    if (!f?.inode) return;
    // Through /proc: the descriptor itself may be write-only (Linux, like the rest of this suite).
    f.inode.durable = fs.readFileSync(`/proc/self/fd/${fd}`);
    this.syncs++;
  }

  private syncDir(dir: string): void {
    for (const [p, e] of this.entries) if (path.dirname(p) === dir) e.durableEntry = true;
    for (const p of [...this.renamedAway.keys()]) if (path.dirname(p) === dir) this.renamedAway.delete(p);
  }

  writeSync(fd: number, data: Uint8Array, position: number): number {
    if (this.dead) throw eio();
    const n = fs.writeSync(fd, data, 0, data.length, position);
    if (this.fds.get(fd)?.dsync) this.capture(fd);
    return n;
  }

  write(fd: number, data: Uint8Array, offset: number, length: number, position: number, cb: (err: Error | null, written: number) => void): void {
    if (this.dead) return void setImmediate(() => cb(eio(), 0));
    fs.write(fd, data, offset, length, position, (err, n) => {
      if (this.dead) return cb(eio(), 0); // the power went out before the write returned: never acknowledged
      if (!err && this.fds.get(fd)?.dsync) this.capture(fd);
      cb(err, n);
    });
  }

  fdatasync(fd: number, cb: (err: Error | null) => void): void {
    if (this.dead) return void setImmediate(() => cb(eio()));
    fs.fdatasync(fd, (err) => {
      if (this.dead) return cb(eio());
      if (!err) this.capture(fd);
      cb(err);
    });
  }

  fsync(fd: number, cb: (err: Error | null) => void): void {
    if (this.dead) return void setImmediate(() => cb(eio()));
    fs.fsync(fd, (err) => {
      if (this.dead) return cb(eio());
      if (!err) {
        const f = this.fds.get(fd);
        if (f && f.inode === null) this.syncDir(f.path);
        else this.capture(fd);
      }
      cb(err);
    });
  }

  unlink(file: string): void {
    if (this.dead) throw eio();
    fs.rmSync(file, { force: true });
    const e = this.entries.get(file);
    this.entries.delete(file);
    // Until its directory is fsynced, an unlinked file comes back after a power loss.
    if (e?.durableEntry) this.renamedAway.set(file, e.inode);
  }

  fsyncSync(fd: number): void {
    if (this.dead) throw eio();
    fs.fsyncSync(fd);
    const f = this.fds.get(fd);
    if (f && f.inode === null) this.syncDir(f.path);
    else this.capture(fd);
  }

  close(fd: number): void {
    this.fds.delete(fd);
    fs.closeSync(fd);
  }

  rename(from: string, to: string): void {
    if (this.dead) throw eio();
    fs.renameSync(from, to);
    const e = this.entries.get(from);
    this.entries.delete(from);
    if (e?.durableEntry) this.renamedAway.set(from, e.inode);
    this.entries.set(to, { inode: e?.inode ?? new Inode(), durableEntry: false });
  }

  size(fd: number): number {
    return fs.fstatSync(fd).size;
  }

  /** Cut the power: every tracked file becomes what would survive; later operations fail with EIO. */
  powerLoss(): void {
    this.dead = true;
    for (const [p, e] of this.entries) {
      if (!e.durableEntry) {
        fs.rmSync(p, { force: true });
        continue;
      }
      let keep = e.inode.durable;
      const now = fs.existsSync(p) ? fs.readFileSync(p) : Buffer.alloc(0);
      if (this.opts.tornPages && now.length > keep.length && now.subarray(0, keep.length).equals(keep)) {
        // Some pages of the unsynced appended bytes reached the disk: a page-aligned prefix.
        const pageEnd = Math.floor(now.length / 4096) * 4096;
        const firstPage = Math.ceil(keep.length / 4096) * 4096;
        if (pageEnd > firstPage) {
          const pages = (pageEnd - firstPage) / 4096;
          const kept = this.opts.tornPages() % (pages + 1);
          if (kept > 0) keep = now.subarray(0, firstPage + kept * 4096);
        }
      }
      fs.writeFileSync(p, keep);
    }
    for (const [p, inode] of this.renamedAway) fs.writeFileSync(p, inode.durable);
  }
}
