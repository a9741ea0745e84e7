// Names that end up in Kubernetes (custom resource names, labels) must be DNS-1123 labels,
// so we enforce that rule everywhere, local mode included: a pipeline that works on a laptop
// must not be refused by the cluster later.
import { BadRequestError } from './errors.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_NAME_LENGTH = 63;

export function dns1123Problem(value: string): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters (got ${value.length})`;
  if (!DNS1123_LABEL.test(value)) {
    return 'must be a lowercase DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit';
  }
  return undefined;
}

export function assertName(field: string, value: string): void {
  const problem = dns1123Problem(value);
  if (problem) throw new BadRequestError(`${field} "${value}" ${problem}`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
