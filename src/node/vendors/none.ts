// CPU-only agents: no GPUs, no device nodes, nothing to hide, nothing to check.
import type { VendorModule } from './types.js';

export const none: VendorModule = {
  id: 'none',
  label: 'CPU-only',
  tools: [],
  pciVendors: [],
  detect: async () => [],
  sharedDevices: async () => [],
  extraDeviceAllow: () => [],
  supplementaryGroups: async () => [],
  isolationEnv: () => ({}),
  dockerArgs: () => [],
  hookCheck: '',
  health: async () => [],
  doctorChecks: async () => [],
  driverFix: () => '',
};
