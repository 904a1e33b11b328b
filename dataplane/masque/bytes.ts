// Copying between byte arrays on the packet path without creating a view per call.
// `Uint8Array#set(src.subarray(...))` allocates a view object for every packet; Buffer#copy takes
// offsets instead. Buffers wrapping the caller's arrays are cached for the last few sources, so the
// steady state (a tunnel reading from the same ring or receive buffer) allocates nothing.

const cache: Array<{ src: Uint8Array; view: Buffer } | undefined> = [
  undefined,
  undefined,
  undefined,
  undefined,
];
let next = 0;

function bufferOf(src: Uint8Array): Buffer {
  if (Buffer.isBuffer(src)) return src;
  for (const e of cache) if (e && e.src === src) return e.view;
  const view = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  cache[next] = { src, view };
  next = (next + 1) % cache.length;
  return view;
}

/** Copies `len` bytes from `src[srcOffset..]` to `dst[dstOffset..]` (regions must not overlap). */
export function copyBytes(
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  len: number,
): void {
  bufferOf(src).copy(dst, dstOffset, srcOffset, srcOffset + len);
}
