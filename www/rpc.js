// The one client of a worker's request protocol, shared by the app and the bench page:
// {id, type, ...args} out; {id, ok} or {id, error} back, and {id, progress} while a request
// runs. Every request settles: an error the worker cannot answer (it failed to start, or
// threw outside a request) rejects every request still waiting, with its message.
export function connect(url, { onProgress = () => {}, onError = () => {} } = {}) {
  const worker = new Worker(url, { type: 'module' });
  let nextId = 1;
  const pending = new Map();
  worker.onmessage = (ev) => {
    const { id, ok, error, progress } = ev.data;
    const p = pending.get(id);
    if (!p) return;
    if (progress !== undefined) {
      onProgress(progress);
      return;
    }
    pending.delete(id);
    if (error !== undefined) p.reject(new Error(error)); else p.resolve(ok);
  };
  worker.onerror = (ev) => {
    const msg = ev.message || 'unknown error';
    onError(msg);
    for (const p of pending.values()) p.reject(new Error(`the worker failed: ${msg}`));
    pending.clear();
  };
  return function call(type, args = {}, transfer = []) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, type, ...args }, transfer);
    });
  };
}
