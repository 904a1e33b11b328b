// The fan-out to connected data planes: every Watch stream registers here, and a change is written
// to the streams as soon as it is committed. Events are broadcast: a data plane ignores session ids
// it does not hold, which keeps the hub free of any knowledge of where a session lives.
import type { WatchEvent } from '../../proto/gen/masque/v1/dataplane.js';

export interface WatchSink {
  write(event: WatchEvent): void;
}

export class WatchHub {
  readonly #sinks = new Map<WatchSink, string>();
  #seq = 0;

  add(sink: WatchSink, dataplaneId: string): void {
    this.#sinks.set(sink, dataplaneId);
    sink.write(this.#event({ hello: true }));
  }

  remove(sink: WatchSink): void {
    this.#sinks.delete(sink);
  }

  /** Data plane ids with an open stream. */
  connected(): string[] {
    return [...new Set(this.#sinks.values())];
  }

  publish(partial: Partial<WatchEvent>): void {
    const event = this.#event(partial);
    for (const sink of this.#sinks.keys()) sink.write(event);
  }

  #event(partial: Partial<WatchEvent>): WatchEvent {
    return {
      seq: ++this.#seq,
      atMs: Date.now(),
      revoked: undefined,
      kick: undefined,
      policy: undefined,
      hello: false,
      ...partial,
    };
  }
}
