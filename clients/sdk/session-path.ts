/**
 * Where the plugin's session file is. Kept apart from session-file.ts (which loads yaml and zod)
 * so a command can find the file without paying for the parser: start-up time is the plugin's
 * hot path.
 */
import { isAbsolute, join, resolve } from "node:path";

export const DEFAULT_SESSION_FILE = ".claude/masque.session.yaml";

/**
 * Where the session file is: an explicit path, else MASQUES_SESSION_FILE, else
 * $CLAUDE_PROJECT_DIR/.claude/masque.session.yaml (Claude Code sets it for commands and hooks),
 * else ./.claude/masque.session.yaml.
 */
export function resolveSessionFilePath(explicit?: string, env: Record<string, string | undefined> = process.env, cwd = process.cwd()): string {
  const p = explicit ?? env["MASQUES_SESSION_FILE"];
  if (p && p.trim() !== "") return isAbsolute(p) ? p : resolve(cwd, p);
  const project = env["CLAUDE_PROJECT_DIR"];
  if (project && project.trim() !== "") return join(project, DEFAULT_SESSION_FILE);
  return resolve(cwd, DEFAULT_SESSION_FILE);
}

