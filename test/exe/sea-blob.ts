// Reads what a single executable carries without running it: the ELF header fields that say which
// machine it is for, and the Node SEA blob that postject put in an ELF note named NODE_SEA_BLOB.
// The blob's layout is Node's (src/node_sea.cc, read off the pinned Node 24 runtime's blobs): a
// magic number, flags, one byte for how NODE_OPTIONS extends the executable's argv, then
// length-prefixed strings (64-bit little-endian lengths): the main script's path, the main script,
// and with the assets flag a count and key/value pairs. Anything left unread is reported, so a
// change of layout fails the tests instead of passing them on a wrong parse.
export interface ElfInfo {
  class64: boolean;
  littleEndian: boolean;
  type: number;
  machine: number;
  interpreter?: string;
  notes: { name: string; desc: Buffer }[];
}

const PT_INTERP = 3;
const PT_NOTE = 4;

export function readElf(bytes: Buffer): ElfInfo {
  if (bytes.subarray(0, 4).toString('latin1') !== '\x7fELF') throw new Error('not an ELF file');
  const class64 = bytes[4] === 2;
  const littleEndian = bytes[5] === 1;
  if (!class64 || !littleEndian) return { class64, littleEndian, type: 0, machine: 0, notes: [] };
  const phoff = Number(bytes.readBigUInt64LE(0x20));
  const phentsize = bytes.readUInt16LE(0x36);
  const phnum = bytes.readUInt16LE(0x38);
  const info: ElfInfo = { class64, littleEndian, type: bytes.readUInt16LE(0x10), machine: bytes.readUInt16LE(0x12), notes: [] };
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const type = bytes.readUInt32LE(ph);
    const off = Number(bytes.readBigUInt64LE(ph + 8));
    const size = Number(bytes.readBigUInt64LE(ph + 32));
    if (type === PT_INTERP)
      info.interpreter = bytes
        .subarray(off, off + size)
        .toString('latin1')
        .replace(/\0+$/, '');
    if (type !== PT_NOTE) continue;
    for (let p = off; p + 12 <= off + size;) {
      const nameSize = bytes.readUInt32LE(p);
      const descSize = bytes.readUInt32LE(p + 4);
      const name = bytes
        .subarray(p + 12, p + 12 + nameSize)
        .toString('latin1')
        .replace(/\0+$/, '');
      const desc = p + 12 + ((nameSize + 3) & ~3);
      info.notes.push({ name, desc: bytes.subarray(desc, desc + descSize) });
      p = desc + ((descSize + 3) & ~3);
    }
  }
  return info;
}

export interface SeaBlob {
  magic: number;
  flags: number;
  execArgvExtension: number;
  codePath: string;
  main: Buffer;
  assets: Map<string, Buffer>;
  unread: number;
}

// Node's SeaFlags bits.
const INCLUDE_ASSETS = 1 << 3;
const KNOWN_FLAGS = 1 | INCLUDE_ASSETS; // the warning disabled, assets

export function readSeaBlob(elf: ElfInfo): SeaBlob {
  const notes = elf.notes.filter((n) => n.name === 'NODE_SEA_BLOB');
  if (notes.length !== 1) throw new Error(`expected one NODE_SEA_BLOB note, found ${notes.length}`);
  const b = notes[0]!.desc;
  let p = 0;
  const str = (): Buffer => {
    const n = Number(b.readBigUInt64LE(p));
    if (p + 8 + n > b.length) throw new Error(`a string of ${n} bytes at ${p} runs past the blob (${b.length})`);
    const s = b.subarray(p + 8, p + 8 + n);
    p += 8 + n;
    return s;
  };
  const magic = b.readUInt32LE(0);
  const flags = b.readUInt32LE(4);
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new Error(`blob flags ${flags}: a layout this reader does not know (code cache, snapshot or argv)`);
  const execArgvExtension = b[8]!;
  p = 9;
  const codePath = str().toString('utf8');
  const main = str();
  const assets = new Map<string, Buffer>();
  if (flags & INCLUDE_ASSETS) {
    const count = Number(b.readBigUInt64LE(p));
    p += 8;
    for (let i = 0; i < count; i++) {
      const key = str().toString('utf8');
      assets.set(key, str());
    }
  }
  return { magic, flags, execArgvExtension, codePath, main, assets, unread: b.length - p };
}
