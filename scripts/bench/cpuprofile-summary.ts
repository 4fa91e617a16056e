/**
 * Aggregates a V8 .cpuprofile (node --cpu-prof) by self time: per function (name, file, line) and per
 * origin (the application, each npm package, Node's internals, GC). Optionally only the samples taken
 * within a window of the monotonic clock (microseconds, as process.hrtime gives them), so that start-up
 * and warm-up are left out. Run alone: `npx tsx scripts/bench/cpuprofile-summary.ts FILE [TOP]`.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  where: string;
  origin: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  /** Milliseconds sampled (idle excluded) and the idle share of the whole window. */
  busyMs: number;
  idleShare: number;
  windowed: boolean;
  functions: ProfileRow[];
  origins: Array<{ origin: string; ms: number; share: number }>;
}

function originOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (/\/dist\//.test(url) || /\/src\//.test(url)) return 'application';
  return url;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const pkg = /node_modules\/(.*)$/.exec(url);
  if (pkg) return pkg[1]!;
  const app = /\/(dist|src)\/(.*)$/.exec(url);
  if (app) return `${app[1]}/${app[2]}`;
  return url.replace(/^file:\/\//, '');
}

export function summariseProfile(file: string, top = 25, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  let t = profile.startTime;
  let kept = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // A sample's time is the gap to the next sample (the last one gets nothing).
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    kept++;
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
  }
  // A window that does not match the profile's clock keeps nothing: fall back to the whole profile.
  if (window && kept < profile.samples.length * 0.05) return summariseProfile(file, top);

  const functions = new Map<string, ProfileRow>();
  const origins = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
    const name = frame.functionName || '(anonymous)';
    const key = `${name}|${where}`;
    const row = functions.get(key) ?? { name, where, origin: originOf(frame), ms: 0, share: 0 };
    row.ms += us / 1000;
    functions.set(key, row);
    origins.set(row.origin, (origins.get(row.origin) ?? 0) + us / 1000);
  }
  const busyMs = busy / 1000;
  return {
    busyMs,
    idleShare: idle + busy > 0 ? idle / (idle + busy) : 0,
    windowed: window !== undefined,
    functions: [...functions.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((row) => ({ ...row, ms: Number(row.ms.toFixed(1)), share: Number((row.ms / busyMs).toFixed(4)) })),
    origins: [...origins.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([origin, ms]) => ({ origin, ms: Number(ms.toFixed(1)), share: Number((ms / busyMs).toFixed(4)) })),
  };
}

export function profileMarkdown(summary: ProfileSummary, topOrigins = 12): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const lines = [
    `Busy (non-idle) samples: ${(summary.busyMs / 1000).toFixed(1)} s; idle share ${pct(summary.idleShare)}${summary.windowed ? ' (load window only)' : ''}.`,
    '',
    '| self time by origin | ms | share |',
    '|---|---:|---:|',
    ...summary.origins.slice(0, topOrigins).map((o) => `| ${o.origin} | ${o.ms} | ${pct(o.share)} |`),
    '',
    '| function | where | origin | self ms | share |',
    '|---|---|---|---:|---:|',
    ...summary.functions.map((f) => `| \`${f.name}\` | ${f.where} | ${f.origin} | ${f.ms} | ${pct(f.share)} |`),
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: tsx scripts/bench/cpuprofile-summary.ts FILE.cpuprofile [TOP]');
    process.exit(2);
  }
  console.log(profileMarkdown(summariseProfile(file, Number(process.argv[3] ?? 25))));
}
