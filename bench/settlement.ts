/**
 * Settlement benchmark dispatcher: `npm run bench:settlement -- --rail <rail> [rail options]`.
 * Each rail's benchmark lives in bench/settlement-<rail>.ts and prints its own figures; this file
 * only picks it. Rails with a benchmark today: lightning (issue 15).
 */
const RAILS = ["lightning"] as const;
type BenchRail = (typeof RAILS)[number];

const args = process.argv.slice(2);
const i = args.indexOf("--rail");
const rail = i >= 0 ? args[i + 1] : undefined;
if (!rail || !(RAILS as readonly string[]).includes(rail)) {
  process.stderr.write(`usage: npm run bench:settlement -- --rail <${RAILS.join("|")}> [options]\n`);
  process.exit(2);
}
const rest = args.filter((_, k) => k !== i && k !== i + 1);
const mod = (await import(`./settlement-${rail as BenchRail}.ts`)) as { run(args: string[]): Promise<void> };
await mod.run(rest);
