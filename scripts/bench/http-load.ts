/**
 * The benchmark's load generator: `connections` keep-alive HTTP/1.1 connections, each sending one
 * request, reading its whole answer, and sending the next, for `seconds` (a closed loop, as pgbench's
 * clients are). It replaced autocannon, which spent 0.08 to 0.16 ms of CPU per request on the two
 * cores it shares with the server and PostgreSQL, against 0.04 to 0.07 here (BENCHMARKS.md): the load
 * generator's own work must take as little as possible from what is measured.
 *
 * Requests are written whole in one write; answers are read as the status line, the headers up to the
 * blank line and exactly Content-Length bytes of body (the server always sends Content-Length, never
 * chunks, for these answers). Latency is from the request's write to its answer's last byte. Answers
 * that arrive after `seconds` are waited for but not counted.
 */
import { connect, type Socket } from 'node:net';

export interface HttpRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpLoadResult {
  /** Answers received within the run, and of those, with a 2xx status. */
  answers: number;
  ok: number;
  /** Connections that failed (refused, reset, closed by the server) or answers not received within the timeout. */
  errors: number;
  timeouts: number;
  seconds: number;
  /** Latencies of the answers counted, in milliseconds, sorted. */
  latenciesMs: Float64Array;
  /** Statuses and bodies of the non-2xx answers, counted by `classify`. */
  refused: Record<string, number>;
  startedAtMonotonicUs: number;
  endedAtMonotonicUs: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** The percentile p (0 to 100) of sorted values: the smallest value with at least p % of them at or below it. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export async function httpLoad(options: {
  url: string;
  connections: number;
  seconds: number;
  /** Makes the next request of a connection. */
  next(): HttpRequest;
  /** Names a refused answer (a problem code, say) for the count of refusals. */
  classify(status: number, body: string): string;
  timeoutMs?: number;
}): Promise<HttpLoadResult> {
  const { hostname, port } = new URL(options.url);
  const host = `${hostname}:${port}`;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const latencies: number[] = [];
  const refused: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  let timeouts = 0;
  const startedAtMonotonicUs = Number(process.hrtime.bigint() / 1000n);
  const started = performance.now();
  const deadline = started + options.seconds * 1000;

  const serialize = (request: HttpRequest): string => {
    let head = `${request.method} ${request.path} HTTP/1.1\r\nHost: ${host}\r\n`;
    for (const [name, value] of Object.entries(request.headers)) head += `${name}: ${value}\r\n`;
    if (request.body !== undefined) head += `Content-Length: ${Buffer.byteLength(request.body)}\r\n`;
    return `${head}\r\n${request.body ?? ''}`;
  };

  const runConnection = () =>
    new Promise<void>((resolve) => {
      let buffered: Buffer = Buffer.alloc(0);
      let sentAt = 0;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        resolve();
      };
      const send = () => {
        if (performance.now() >= deadline) return finish();
        sentAt = performance.now();
        timer = setTimeout(() => {
          timeouts++;
          finish();
        }, timeoutMs);
        socket.write(serialize(options.next()));
      };
      const socket: Socket = connect({ host: hostname, port: Number(port), noDelay: true }, send);
      socket.on('error', () => {
        errors++;
        finish();
      });
      socket.on('close', () => {
        if (!done) errors++;
        finish();
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        const headerEnd = buffered.indexOf(HEADER_END);
        if (headerEnd < 0) return;
        const head = buffered.toString('latin1', 0, headerEnd);
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (!length) {
          errors++;
          return finish();
        }
        const end = headerEnd + HEADER_END.length + Number(length[1]);
        if (buffered.length < end) return;
        const answeredAt = performance.now();
        clearTimeout(timer);
        const status = Number(head.slice(9, 12));
        if (answeredAt <= deadline) {
          latencies.push(answeredAt - sentAt);
          if (status >= 200 && status < 300) ok++;
          else {
            const name = options.classify(status, buffered.toString('utf8', headerEnd + HEADER_END.length, end));
            refused[name] = (refused[name] ?? 0) + 1;
          }
        }
        buffered = buffered.subarray(end);
        send();
      });
    });

  await Promise.all(Array.from({ length: options.connections }, runConnection));
  const latenciesMs = Float64Array.from(latencies).sort();
  return {
    answers: latencies.length,
    ok,
    errors,
    timeouts,
    seconds: options.seconds,
    latenciesMs,
    refused,
    startedAtMonotonicUs,
    endedAtMonotonicUs: Number(process.hrtime.bigint() / 1000n),
  };
}
