// bkci-gpu-devices.service: a oneshot, run as root before the agents, that creates the vendor's
// device nodes (NVIDIA: nvidia-ctk system create-device-nodes, or nvidia-modprobe -u -c0). Nodes
// the driver makes lazily (nvidia-uvm on the first CUDA call) must exist before an agent starts:
// its DevicePolicy=closed forbids mknod, and systemd skips DeviceAllow= paths missing at start.
import { UsageError } from '../util/errors.js';

export const DEVICES_UNIT = 'bkci-gpu-devices.service';
export const DEVICES_UNIT_PATH = `/etc/systemd/system/${DEVICES_UNIT}`;

const HEADER = 'Managed by bkci (bkci node setup): re-run setup to change it; bkci node status reports hand edits.';

// `argv`: absolute command and its arguments (from the vendor, decided on the host's tools). The
// ordering before the agents is the agents' `After=bkci-gpu-devices.service` (with `Wants=`): the
// same edge as a `Before=` here, which would have to list every instance and so change (and run the
// command again) whenever an agent is added or a GPU goes missing. `Before=multi-user.target` so
// boot waits for it like for the agents.
export function renderDevicesUnit(argv: string[]): string {
  const [cmd, ...args] = argv;
  if (!cmd || !cmd.startsWith('/') || argv.some((a) => !/^[A-Za-z0-9._,:/+=@-]+$/.test(a)))
    throw new UsageError(`device-node command ${JSON.stringify(argv.join(' '))}: expected an absolute path and plain arguments`);
  return `# ${HEADER}
# Creates the GPU device nodes before the agents start (their device policy forbids mknod).
[Unit]
Description=GPU device nodes for bkci's agents
Before=multi-user.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${[cmd, ...args].join(' ')}

[Install]
WantedBy=multi-user.target
`;
}
