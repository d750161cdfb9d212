/**
 * Exclusive ownership of a data directory by one process.
 *
 * Node has no flock(2) and the npm packages that wrap it need a native build (install scripts do
 * not run here); mkdir/mtime-based lock packages (proper-lockfile) judge staleness by a timer, which
 * a stalled-but-alive owner can lose. So: a lock file whose content is the owner's pid and process
 * start time, created atomically with link(2) (fails with EEXIST if the lock exists, and the file
 * appears with its full content at once). A lock whose pid is dead, or whose pid was reused by a
 * process with another start time, is stale: it is taken over by renaming it to a unique name and
 * checking the renamed file still holds the stale content (if another opener got there first, its
 * fresh lock is put back with link(2), which cannot clobber). The lock is removed on close; after a
 * SIGKILL it is simply stale.
 */
import fs from "node:fs";
import path from "node:path";

export class DataDirInUseError extends Error {
  readonly pid: number;
  constructor(dir: string, pid: number) {
    super(`data directory ${dir} is in use by pid ${pid}${pid === process.pid ? " (this process)" : ""}`);
    this.name = "DataDirInUseError";
    this.pid = pid;
  }
}

interface Owner {
  pid: number;
  start: string;
}

/** Process start time from /proc (Linux), to tell a live owner from a reused pid. "" elsewhere. */
function processStart(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    // Field 22 (starttime), counted after the parenthesised command name, which may contain spaces.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19] ?? "";
  } catch {
    return "";
  }
}

function alive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    // EPERM: exists but belongs to someone else.
  }
  if (owner.start === "") return true;
  const now = processStart(owner.pid);
  return now === "" || now === owner.start;
}

function parse(content: string): Owner | null {
  const m = /^pid (\d+) start (\S*)\n$/.exec(content);
  if (!m) return null;
  return { pid: Number(m[1]), start: m[2]! };
}

export interface DirLock {
  readonly file: string;
  release(): void;
}

export function lockDataDir(dir: string): DirLock {
  const file = path.join(dir, "LOCK");
  const mine = `pid ${process.pid} start ${processStart(process.pid)}\n`;
  const unique = `${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}`;
  const tmp = path.join(dir, `LOCK.${unique}.new`);
  fs.writeFileSync(tmp, mine, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        fs.linkSync(tmp, file);
        return {
          file,
          release() {
            try {
              if (fs.readFileSync(file, "latin1") === mine) fs.unlinkSync(file);
            } catch {
              // already gone
            }
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      let content: string;
      try {
        content = fs.readFileSync(file, "latin1");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // released meanwhile: retry
        throw err;
      }
      const owner = parse(content);
      if (owner && alive(owner)) throw new DataDirInUseError(dir, owner.pid);
      // Stale (dead owner) or unreadable garbage from an older format: take it over carefully.
      const aside = path.join(dir, `LOCK.${unique}.stale`);
      try {
        fs.renameSync(file, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw err;
      }
      const moved = fs.readFileSync(aside, "latin1");
      if (moved !== content) {
        // We moved someone's fresh lock: put it back unless yet another one appeared.
        try {
          fs.linkSync(aside, file);
        } catch {
          // a newer lock is in place; ours was older anyway
        }
      }
      fs.rmSync(aside, { force: true });
    }
    throw new Error(`could not lock data directory ${dir}: lock file ${file} keeps changing`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
