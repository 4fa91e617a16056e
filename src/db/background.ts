/**
 * Runs task every `intervalMs` in the background, never two at once (a run still going when the next is
 * due skips that one); failures go to onError. Returns the function that stops it. The timer does not
 * keep the process alive.
 */
export function runEvery(intervalMs: number, task: () => Promise<unknown>, onError: (error: unknown) => void): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    task()
      .catch(onError)
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
