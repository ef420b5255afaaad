import type { EventEmitter } from 'node:events';

/** Resolves on the emitter's next 'drain' (room for more writes) or 'close' (gone), whichever comes first. */
export function drainOrClose(emitter: EventEmitter): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      emitter.off('drain', done);
      emitter.off('close', done);
      resolve();
    };
    emitter.on('drain', done);
    emitter.on('close', done);
  });
}
