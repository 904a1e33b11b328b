// IP address text ⇄ bytes, for the control side of the route table (sessions come and go as
// strings from the control plane). The per-packet path never comes here: it reads addresses from
// the packet bytes directly.

export class IpAddressError extends Error {
  constructor(text: string) {
    super(`not an IP address: ${JSON.stringify(text)}`);
    this.name = 'IpAddressError';
  }
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(text: string, out: Uint8Array, at: number): boolean {
  const m = V4.exec(text);
  if (m === null) return false;
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1];
    const n = Number(part);
    if (n > 255 || (part.length > 1 && part[0] === '0')) return false;
    out[at + i] = n;
  }
  return true;
}

function parseGroups(text: string, out: Uint16Array, tailV4: Uint8Array): number {
  // Returns the number of 16-bit groups written, or -1; an embedded dotted quad counts as two.
  if (text === '') return 0;
  const parts = text.split(':');
  let n = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (i === parts.length - 1 && p.includes('.')) {
      if (!parseV4(p, tailV4, 0)) return -1;
      out[n++] = (tailV4[0] << 8) | tailV4[1];
      out[n++] = (tailV4[2] << 8) | tailV4[3];
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return -1;
      out[n++] = parseInt(p, 16);
    }
    if (n > 8) return -1;
  }
  return n;
}

/** Parse dotted-quad IPv4 or RFC 4291 IPv6 text (no zone, no prefix) into 4 or 16 bytes. */
export function parseIpAddress(text: string): Uint8Array {
  const v4 = new Uint8Array(4);
  if (parseV4(text, v4, 0)) return v4;
  const halves = text.split('::');
  if (halves.length > 2) throw new IpAddressError(text);
  const head = new Uint16Array(9);
  const tail = new Uint16Array(9);
  const scratch = new Uint8Array(4);
  const nh = parseGroups(halves[0], head, scratch);
  const nt = halves.length === 2 ? parseGroups(halves[1], tail, scratch) : 0;
  if (nh < 0 || nt < 0) throw new IpAddressError(text);
  if (halves.length === 1 ? nh !== 8 : nh + nt > 7) throw new IpAddressError(text);
  const out = new Uint8Array(16);
  for (let i = 0; i < nh; i++) {
    out[2 * i] = head[i] >> 8;
    out[2 * i + 1] = head[i] & 0xff;
  }
  for (let i = 0; i < nt; i++) {
    const g = 8 - nt + i;
    out[2 * g] = tail[i] >> 8;
    out[2 * g + 1] = tail[i] & 0xff;
  }
  return out;
}

/** Big-endian 32-bit word at `offset`, as a signed int32 (the route table's key unit). */
export function readWord(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]
  );
}
