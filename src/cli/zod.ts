// The part of zod the commands' input schemas use, imported by name so that the bundle keeps only
// that (a namespace handed around as a value would keep all of zod). Loaded when a command runs.
import { array, boolean, enum as zenum, number, object, record, string, tuple } from 'zod';

export const z = { array, boolean, enum: zenum, number, object, record, string, tuple };
export type Zod = typeof z;
