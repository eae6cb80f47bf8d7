// A batch as YAML text for `buildkite-agent pipeline upload`. A string that some YAML reader could
// take for another type (yes/no/on/off, numbers with leading zeros, dates, 0o17, .inf) is written
// double-quoted, so the agent reads back exactly the values bkci parsed, whichever YAML version it
// applies. Long lines are never folded.
import { Document, Scalar, visit } from 'yaml';

const LOOKS_TYPED =
  /^(?:[-+.]?\d|[-+]?\.(?:inf|Inf|INF)$|\.(?:nan|NaN|NAN)$|(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|=|<<)$)/;

export function toYaml(value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Scalar(_key, node: Scalar) {
      if (typeof node.value === 'string' && LOOKS_TYPED.test(node.value)) node.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return doc.toString({ lineWidth: 0, minContentWidth: 0 });
}
