import { describe, expect, it } from 'vitest';
import { BatchQueue, type BatchQueueOptions, type Settled } from '../../src/db/batch-queue.js';

interface Request {
  id: number;
  key?: string;
  /** Answered with an error, the batch's others unharmed. */
  refused?: boolean;
  /** Fails its whole batch when it has company; answered with an error when alone. */
  breaks?: boolean;
}

/** A queue whose batches wait until the test releases them, recording what ran and when. */
function gatedQueue(options: Partial<BatchQueueOptions<Request, number>> = {}) {
  const batches: number[][] = [];
  const releases: Array<() => void> = [];
  let running = 0;
  let mostAtOnce = 0;
  const queue = new BatchQueue<Request, number>({
    maxBatch: 4,
    concurrency: 1,
    startNextFirst: true,
    ...options,
    async run(requests) {
      batches.push(requests.map((request) => request.id));
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      await new Promise<void>((resolve) => releases.push(resolve));
      running--;
      if (requests.length > 1 && requests.some((request) => request.breaks)) throw new Error('one of the batch is bad');
      return requests.map((request): Settled<number> =>
        request.refused || request.breaks ? { ok: false, error: new Error(`bad ${request.id}`) } : { ok: true, value: request.id * 10 },
      );
    },
  });
  const releaseAll = async () => {
    // Each release may start the next batch, which registers its own release after a tick.
    for (let rounds = 0; rounds < 50; rounds++) {
      releases.splice(0).forEach((release) => release());
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { queue, batches, releaseAll, mostAtOnce: () => mostAtOnce };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('BatchQueue (group commit)', () => {
  it('starts a lone request’s batch one event-loop turn later, with no timer', async () => {
    const { queue, batches, releaseAll } = gatedQueue();
    const answer = queue.submit({ id: 0 });
    expect(batches).toEqual([]);
    await nextTurn();
    expect(batches).toEqual([[0]]);
    await releaseAll();
    expect(await answer).toBe(0);
  });

  it('serves the requests of one turn together, then those that arrived meanwhile, oldest first, up to maxBatch', async () => {
    const { queue, batches, releaseAll } = gatedQueue();
    const first = [queue.submit({ id: 0 }), queue.submit({ id: 1 })];
    await nextTurn();
    const later = Array.from({ length: 5 }, (_, i) => queue.submit({ id: i + 2 }));
    await nextTurn();
    // The first batch is still being served: the later requests wait for it.
    expect(batches).toEqual([[0, 1]]);
    await releaseAll();
    expect(await Promise.all([...first, ...later])).toEqual([0, 10, 20, 30, 40, 50, 60]);
    expect(batches).toEqual([[0, 1], [2, 3, 4, 5], [6]]);
  });

  it.each([
    { startNextFirst: true, order: ['batch of 2 sent', 'request 0 answered'] },
    { startNextFirst: false, order: ['request 0 answered', 'batch of 2 sent'] },
  ])(
    'with startNextFirst $startNextFirst, orders the next batch’s first statement and the finished batch’s answers: $order',
    async ({ startNextFirst, order }) => {
      const events: string[] = [];
      const { queue, releaseAll } = gatedQueue({
        startNextFirst,
        // The batch's first statement leaves a step after the batch starts, as a query does.
        onBatch: (size) => void Promise.resolve().then(() => events.push(`batch of ${size} sent`)),
      });
      const first = queue.submit({ id: 0 });
      await nextTurn();
      const later = [queue.submit({ id: 1 }), queue.submit({ id: 2 })];
      const answered = first.then(() => events.push('request 0 answered'));
      await releaseAll();
      await answered;
      expect(events.slice(1)).toEqual(order);
      expect(await Promise.all(later)).toEqual([10, 20]);
    },
  );

  it('never serves more than `concurrency` batches at once', async () => {
    const { queue, batches, releaseAll, mostAtOnce } = gatedQueue({ concurrency: 2, maxBatch: 2 });
    const answers = Array.from({ length: 9 }, (_, id) => queue.submit({ id }));
    await nextTurn();
    expect(batches).toEqual([
      [0, 1],
      [2, 3],
    ]);
    await releaseAll();
    await Promise.all(answers);
    expect(mostAtOnce()).toBe(2);
    expect(batches.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('keeps requests with the same key out of one batch and apart in time; the others pass them by', async () => {
    const { queue, batches, releaseAll } = gatedQueue({ exclusiveKeyOf: (request) => request.key ?? null });
    const answers = [
      queue.submit({ id: 0, key: 'a' }),
      queue.submit({ id: 1, key: 'a' }),
      queue.submit({ id: 2, key: 'b' }),
      queue.submit({ id: 3, key: 'a' }),
      queue.submit({ id: 4 }),
      queue.submit({ id: 5, key: 'b' }),
    ];
    await releaseAll();
    expect(await Promise.all(answers)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(batches).toEqual([[0, 2, 4], [1, 5], [3]]);
  });

  it('answers each request with its own result: one refusal does not fail the others', async () => {
    const { queue, batches, releaseAll } = gatedQueue();
    const settled = Promise.allSettled([queue.submit({ id: 1 }), queue.submit({ id: 2, refused: true }), queue.submit({ id: 3 })]);
    await releaseAll();
    expect(batches).toEqual([[1, 2, 3]]);
    const [one, two, three] = await settled;
    expect(one).toEqual({ status: 'fulfilled', value: 10 });
    expect((two as PromiseRejectedResult).reason.message).toBe('bad 2');
    expect(three).toEqual({ status: 'fulfilled', value: 30 });
  });

  it('runs each request of a failed batch again alone when the failure may be one request’s', async () => {
    const { queue, batches, releaseAll } = gatedQueue({ mayBelongToOne: () => true });
    const rest = Promise.allSettled([queue.submit({ id: 1 }), queue.submit({ id: 2, breaks: true }), queue.submit({ id: 3 })]);
    await releaseAll();
    const [one, two, three] = await rest;
    expect(one).toEqual({ status: 'fulfilled', value: 10 });
    expect(two.status).toBe('rejected');
    expect((two as PromiseRejectedResult).reason.message).toBe('bad 2');
    expect(three).toEqual({ status: 'fulfilled', value: 30 });
    expect(batches[0]).toEqual([1, 2, 3]);
    expect(batches.slice(1).sort()).toEqual([[1], [2], [3]]);
  });

  it('fails the whole batch with its error when the failure is not one request’s (the database is away)', async () => {
    const { queue, batches, releaseAll } = gatedQueue({ mayBelongToOne: () => false });
    const rest = Promise.allSettled([queue.submit({ id: 1 }), queue.submit({ id: 2, breaks: true })]);
    await releaseAll();
    for (const result of await rest) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason.message).toBe('one of the batch is bad');
    }
    expect(batches).toEqual([[1, 2]]);
  });

  it('reports each batch’s size as it starts', async () => {
    const sizes: number[] = [];
    const { queue, releaseAll } = gatedQueue({ onBatch: (size) => sizes.push(size) });
    const first = queue.submit({ id: 0 });
    await nextTurn();
    const later = Array.from({ length: 3 }, (_, i) => queue.submit({ id: i + 1 }));
    await releaseAll();
    await Promise.all([first, ...later]);
    expect(sizes).toEqual([1, 3]);
  });
});
