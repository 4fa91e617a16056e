/** What became of one request of a batch: its value, or the error to answer it with. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface BatchQueueOptions<R, T> {
  /** Serves a batch; returns one result per request, in their order. */
  run(requests: readonly R[]): Promise<Settled<T>[]>;
  /** Requests with the same non-null key never share a batch nor run at once (an idempotency key). */
  exclusiveKeyOf?(request: R): string | null;
  /**
   * Whether a failed batch may owe its failure to one of its requests (a lock wait that timed out, a
   * constraint): then each request runs again alone, so that only its own requests fail. Otherwise
   * (the database is unreachable) every request of the batch answers the same error.
   */
  mayBelongToOne?(error: unknown): boolean;
  maxBatch: number;
  /** Batches served at once. */
  concurrency: number;
  /**
   * Start the next batch before answering the requests of one that finished: right when batches are
   * served by another process (a database server), so that the next batch's first statement travels
   * while the answers are written; wrong when they are served in this one (PGlite), where the next
   * batch's work would hold the answers back.
   */
  startNextFirst: boolean;
  /** Told each batch's size as it starts, for metrics. */
  onBatch?(size: number): void;
}

interface Waiting<R, T> {
  request: R;
  key: string | null;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/**
 * Requests that arrive while `concurrency` batches are being served wait, and are then served
 * together, up to `maxBatch` at a time: group commit, as TigerBeetle and PostgreSQL's own WAL writer
 * do it. Under no load a request is a batch of one and waits one event-loop turn, no timer; under load
 * a batch costs one round of statements however many requests it carries. Each request is answered on
 * its own.
 */
export class BatchQueue<R, T> {
  private readonly waiting: Waiting<R, T>[] = [];
  private readonly keysInFlight = new Set<string>();
  private batchesInFlight = 0;
  private startScheduled = false;

  constructor(private readonly options: BatchQueueOptions<R, T>) {}

  submit(request: R): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ request, key: this.options.exclusiveKeyOf?.(request) ?? null, resolve, reject });
      this.scheduleStart();
    });
  }

  /**
   * A free slot starts its batch one event-loop turn after the first request, not at once: requests
   * that reach the queue in the same turn (answers read together from the network, or a burst served
   * by an in-process PGlite, which never yields to I/O) then share it. The cost is one turn, not a timer.
   */
  private scheduleStart(): void {
    if (this.startScheduled || this.batchesInFlight >= this.options.concurrency) return;
    this.startScheduled = true;
    setImmediate(() => {
      this.startScheduled = false;
      this.startBatches();
    });
  }

  private startBatches(): void {
    while (this.batchesInFlight < this.options.concurrency) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.batchesInFlight++;
      this.options.onBatch?.(batch.length);
      void this.serve(batch, () => {
        this.batchesInFlight--;
        for (const { key } of batch) if (key !== null) this.keysInFlight.delete(key);
        this.startBatches();
      });
    }
  }

  /** The oldest waiting requests, up to maxBatch, passing over those whose key is in flight. */
  private takeBatch(): Waiting<R, T>[] {
    const batch: Waiting<R, T>[] = [];
    for (let i = 0; i < this.waiting.length && batch.length < this.options.maxBatch;) {
      const candidate = this.waiting[i]!;
      if (candidate.key !== null && this.keysInFlight.has(candidate.key)) {
        i++;
        continue;
      }
      if (candidate.key !== null) this.keysInFlight.add(candidate.key);
      batch.push(candidate);
      this.waiting.splice(i, 1);
    }
    return batch;
  }

  /** Runs a batch, frees its slot (which starts the next batch) and answers its requests, in the order startNextFirst sets. */
  private async serve(batch: Waiting<R, T>[], release: () => void): Promise<void> {
    const settled = await this.settle(batch);
    const answer = () =>
      settled.forEach(({ waiting, result }) => (result.ok ? waiting.resolve(result.value) : waiting.reject(result.error)));
    if (this.options.startNextFirst) {
      release();
      setImmediate(answer);
    } else {
      answer();
      release();
    }
  }

  private async settle(batch: Waiting<R, T>[]): Promise<{ waiting: Waiting<R, T>; result: Settled<T> }[]> {
    let results: Settled<T>[];
    try {
      results = await this.options.run(batch.map((waiting) => waiting.request));
    } catch (error) {
      if (batch.length === 1 || !this.options.mayBelongToOne?.(error))
        return batch.map((waiting) => ({ waiting, result: { ok: false, error } }));
      return (await Promise.all(batch.map((waiting) => this.settle([waiting])))).flat();
    }
    return batch.map((waiting, i) => ({ waiting, result: results[i]! }));
  }
}
