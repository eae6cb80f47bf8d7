// The vendor registry: every GPU vendor bkci knows, in the order `--vendor auto` tries them, and
// `none` for CPU-only agents. Nothing outside this directory names a vendor.
import { UsageError } from '../../util/errors.js';
import { amd } from './amd.js';
import { ascend } from './ascend.js';
import { none } from './none.js';
import { nvidia } from './nvidia.js';
import type { VendorModule } from './types.js';

export type { VendorModule } from './types.js';

export const GPU_VENDORS: readonly VendorModule[] = [nvidia, amd, ascend];
export const NONE = none;

export const vendorIds = (): string[] => [...GPU_VENDORS.map((v) => v.id), none.id];

// The module of a vendor id (`--vendor`, a manifest, BKCI_GPU_VENDOR).
export function vendorOf(id: string): VendorModule | undefined {
  return id === none.id ? none : GPU_VENDORS.find((v) => v.id === id);
}

// Like vendorOf, for a user's --vendor: an unknown id is bad usage.
export function vendorFlag(id: string): VendorModule {
  const v = vendorOf(id);
  if (!v) throw new UsageError(`--vendor ${JSON.stringify(id)}: not a vendor bkci knows`, `use one of auto, ${vendorIds().join(', ')}`);
  return v;
}

// The vendor of a PCI vendor id (`0x10de`), for GPUs on the bus whose tools are missing.
export const vendorOfPci = (pci: string): VendorModule | undefined => GPU_VENDORS.find((v) => v.pciVendors.includes(pci));
