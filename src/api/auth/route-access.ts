// What each family of routes needs, in RBAC terms on `conveyor.ci` (docs/security.md has
// the full route → verb → resource table). A `pipeline` resource is a Pipeline custom
// resource; resources of other types are Resource objects.
import type { ParameterizedContext } from 'koa';
import { PIPELINE_TYPE } from '../../domain/index.ts';
import type { Access } from './types.ts';

export function resourceKind(type: unknown): string {
  return type === PIPELINE_TYPE ? 'pipelines' : 'resources';
}

export const onResource = (verb: string) => (ctx: ParameterizedContext): Access => ({ verb, resource: resourceKind((ctx.params as Record<string, string>).type) });

export const onPostedResource = (ctx: ParameterizedContext): Access => ({
  verb: 'create',
  resource: resourceKind((ctx.request as { body?: { resource?: unknown } }).body?.resource),
});

export const onDefinitions = (verb: string): Access => ({ verb, resource: 'resourcedefinitions' });
export const onRuns = (verb: string): Access => ({ verb, resource: 'runs' });
export const onRunLogs = (verb: string): Access => ({ verb, resource: 'runs', subresource: 'log' });
export const onDriverPipelines = (verb: string): Access => ({ verb, resource: 'driverpipelines' });
