/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`, or `bench/e2e.ts --profile`):
 * self time by function and by file, and total (inclusive) time of the functions that
 * matter, so a profile can be read and pasted into a report without a GUI.
 *
 * ```sh
 * deno run --allow-read bench/profile_summary.ts PROFILE.cpuprofile [--top 30] [--match src/]
 * ```
 *
 * `--match` keeps only functions whose file contains the text in the inclusive table.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const nodeModules = url.lastIndexOf("node_modules/");
  if (nodeModules >= 0) {
    const rest = url.slice(nodeModules + "node_modules/".length).split("/");
    const scoped = rest[0]!.startsWith("@") || rest[0]!.startsWith(".deno");
    return `npm:${rest.slice(0, scoped ? 2 : 1).join("/")}/…/${rest.at(-1)}`;
  }
  const marks = ["/src/", "/bench/", "/sinks/", "/tests/", "ext:", "node:"];
  for (const mark of marks) {
    const at = url.indexOf(mark);
    if (at >= 0) return url.slice(mark.startsWith("/") ? at + 1 : at);
  }
  return url;
}

function label(frame: CallFrame): string {
  const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
  return frame.url === "" ? name : `${name} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

/** Coarse areas for a one-glance split of self time. */
const AREAS: [area: string, test: (frame: CallFrame) => boolean][] = [
  ["garbage collector", (f) => f.functionName === "(garbage collector)"],
  ["MD5 (src/md5.ts)", (f) => f.url.includes("/src/md5.ts")],
  [
    "codec (src/codec.ts, _protobuf, _utf8)",
    (f) => /\/src\/(codec|_protobuf|_utf8)\.ts/.test(f.url),
  ],
  [
    "direct transport (src/_direct_client.ts, _put_records_json, _sigv4)",
    (f) => /\/src\/(_direct_client|_put_records_json|_sigv4)\.ts/.test(f.url),
  ],
  ["pipeline (rest of src/)", (f) => f.url.includes("/src/")],
  ["AWS SDK (npm:@aws-sdk, npm:@smithy)", (f) => /node_modules\/.*@(aws-sdk|smithy)\//.test(f.url)],
  [
    "aws-kinesis-agg, protobufjs",
    (f) => /node_modules\/.*(aws-kinesis-agg|protobufjs)\//.test(f.url),
  ],
  ["benchmark workload (bench/)", (f) => f.url.includes("/bench/")],
  [
    "runtime: fetch, crypto, streams, encoding (ext:, node:, ops)",
    (f) => f.url.startsWith("ext:") || f.url.startsWith("node:") || f.url === "",
  ],
];

function area(frame: CallFrame): string {
  for (const [name, test] of AREAS) if (test(frame)) return name;
  return "other";
}

function pct(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(1).padStart(5)}%`;
}

function main(): void {
  const args = process.argv.slice(2);
  let top = 30;
  let match: string | undefined;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--top") top = Number(args[++i]);
    else if (args[i] === "--match") match = args[++i];
    else files.push(args[i]!);
  }
  if (files.length !== 1) {
    throw new TypeError("Cannot summarise as one .cpuprofile path is needed");
  }
  const profile = JSON.parse(readFileSync(files[0]!, "utf8")) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) byId.set(node.id, node);
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const selfTime = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    // timeDeltas[i] is the gap before sample i; charge it to the sample that follows.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfTime.set(id, (selfTime.get(id) ?? 0) + dt);
  }
  const total = [...selfTime.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfTime].filter(([id]) => {
    const name = byId.get(id)!.callFrame.functionName;
    return name === "(idle)" || name === "(program)";
  }).reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;

  const selfByArea = new Map<string, number>();
  const selfByFunction = new Map<string, number>();
  const selfByFile = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, time] of selfTime) {
    const frame = byId.get(id)!.callFrame;
    const key = label(frame);
    if (frame.functionName !== "(idle)" && frame.functionName !== "(program)") {
      selfByArea.set(area(frame), (selfByArea.get(area(frame)) ?? 0) + time);
    }
    selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + time);
    const file = frame.url === "" ? `(native) ${frame.functionName}` : shortUrl(frame.url);
    selfByFile.set(file, (selfByFile.get(file) ?? 0) + time);
    // Every distinct function on the stack gets the sample once (recursion counted once).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(byId.get(at)!.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + time);
    }
  }
  const print = (title: string, map: Map<string, number>, filter?: (key: string) => boolean) => {
    console.log(`\n${title}`);
    const rows = [...map].filter(([key]) => filter?.(key) ?? true).sort((a, b) => b[1] - a[1])
      .slice(0, top);
    for (const [key, time] of rows) {
      console.log(`${(time / 1000).toFixed(1).padStart(9)} ms ${pct(time, busy)}  ${key}`);
    }
  };
  console.log(
    `${files[0]}: ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy ` +
      `(percentages are of busy time)`,
  );
  print("Self time by area", selfByArea);
  print(
    "Self time by function",
    selfByFunction,
    (key) => !key.startsWith("(idle)") && !key.startsWith("(program)"),
  );
  print(
    "Self time by file",
    selfByFile,
    (key) => !key.includes("(idle)") && !key.includes("(program)"),
  );
  print(
    "Inclusive time" + (match === undefined ? "" : ` (files matching '${match}')`),
    inclusive,
    (key) => match === undefined || key.includes(match),
  );
}

main();
