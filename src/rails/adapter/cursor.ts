/**
 * The deposit-scan cursor, durable in the adapter's data directory (ADR 0082): one small text file
 * per rail, `<data_dir>/<rail>.deposit-cursor`, replaced atomically (write a temp file, fsync,
 * rename, fsync the directory), so a crash leaves the old cursor or the new one, never a torn one.
 *
 * Why a file and not the control plane: the cursor is only a read position on the chain. Losing it
 * or reading an old one makes the adapter report deposits again, and the daemon credits once per
 * (chain id, tx ref, event index); so it needs durability against restarts, not consensus.
 */
import { mkdir, open, readFile, rename } from "node:fs/promises";
import path from "node:path";

/** Upper bound on a cursor's text (a Base cursor is ~80 characters). */
export const CURSOR_MAX_CHARS = 1_024;

export interface CursorStore {
  /** The saved cursor, or null before the first save. */
  load(): Promise<string | null>;
  /** Replace the saved cursor atomically and durably. Throws RangeError for an empty/oversized text. */
  save(cursor: string): Promise<void>;
}

/** A CursorStore backed by `<data_dir>/<name>.deposit-cursor` (the directory is created if missing). */
export function fileCursorStore(data_dir: string, name: string): CursorStore {
  if (!/^[a-z0-9_-]+$/.test(name)) throw new RangeError(`cursor name must be [a-z0-9_-]+, got "${name}"`);
  const file = path.join(data_dir, `${name}.deposit-cursor`);
  return {
    async load() {
      try {
        const text = (await readFile(file, "utf8")).trim();
        return text === "" ? null : text;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw e;
      }
    },
    async save(cursor) {
      if (cursor === "" || cursor.length > CURSOR_MAX_CHARS || cursor.includes("\n")) {
        throw new RangeError(`cursor must be one line of 1-${CURSOR_MAX_CHARS} characters`);
      }
      await mkdir(data_dir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      const fh = await open(tmp, "w", 0o600);
      try {
        await fh.writeFile(`${cursor}\n`, "utf8");
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
      const dir = await open(data_dir, "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    },
  };
}
